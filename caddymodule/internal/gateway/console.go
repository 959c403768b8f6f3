package gateway

import (
	"net/http"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// consoleGuard gives the operator console the gateway's session checks: the
// same sign-in redirect, CSRF token and recent-sign-in rule as the account
// page's actions.
type consoleGuard struct{ g *Gateway }

func (c consoleGuard) SignedIn(w http.ResponseWriter, r *http.Request, here string) *store.Session {
	return c.g.signedIn(w, r, here)
}

func (c consoleGuard) PostedRecently(w http.ResponseWriter, r *http.Request) *store.Session {
	return c.g.postedRecently(w, r)
}

func (c consoleGuard) CSRFToken(sess *store.Session) string { return c.g.sessions.CSRFToken(sess.ID) }

func (c consoleGuard) ClientIP(r *http.Request) string { return c.g.clientIP(r) }
