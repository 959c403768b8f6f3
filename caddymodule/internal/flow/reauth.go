package flow

import (
	"fmt"
	"net/http"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// DefaultReauthenticateAfter is how long an authentication counts as recent
// for sensitive account actions.
const DefaultReauthenticateAfter = 10 * time.Minute

// NeedsReauthentication reports whether the person of s must authenticate
// again (a ModeReauthenticate flow) before a sensitive account action:
// connecting or disconnecting an account, signing out other sessions. That
// is when they last did longer than ReauthenticateAfter ago, or when the
// session does not know (sessions from before it was recorded). Someone
// holding a stolen session cookie cannot pass it without the account.
func (f *Flow) NeedsReauthentication(s *store.Session) bool {
	return s.AuthTime.IsZero() || f.now().Sub(s.AuthTime) > f.ReauthenticateAfter
}

// authTime is when the person of res authenticated: the ID token's
// auth_time, never later than now; now when the provider did not say (plain
// OAuth 2.0 providers never do: completing their flow is the proof).
func (f *Flow) authTime(res *provider.Result) time.Time {
	now := f.now()
	if res.AuthTime.IsZero() || res.AuthTime.After(now) {
		return now
	}
	return res.AuthTime
}

// reauthenticated checks a reauthenticate flow's result, whose identity is
// already known to be the session's account: the provider must not report
// an authentication older than ReauthenticateAfter (it ignored prompt=login
// and max_age=0). It returns the new session's authentication.
func (f *Flow) reauthenticated(p *provider.Provider, rec *pending, res *provider.Result) (session.Auth, error) {
	at := f.authTime(res)
	if f.now().Sub(at) > f.ReauthenticateAfter {
		return session.Auth{}, &Error{Status: http.StatusForbidden, Reason: ReasonNotReauthenticated,
			Message: i18n.M("flow.not_reauthenticated", "provider", p.DisplayName()),
			Err:     fmt.Errorf("provider %s reported an authentication %v old", p.Name(), f.now().Sub(at).Round(time.Second))}
	}
	return session.Auth{AccountID: rec.AccountID, Time: at}, nil
}

// ReasonNotReauthenticated is the reason of a re-authentication that the
// provider answered without a fresh sign-in.
const ReasonNotReauthenticated = "not_reauthenticated"
