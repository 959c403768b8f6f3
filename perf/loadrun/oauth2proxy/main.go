// Command oauth2proxy-cookie mints an oauth2-proxy session cookie with
// oauth2-proxy's own cookie session store (pkg/sessions/cookie), for the
// load run's forward-auth rows: the dev provider cannot sign oauth2-proxy
// in (its only client is the gateway, whose secret is derived from the
// store's), so the session a sign-in would store is written directly. It
// prints the Cookie header (name=value) on standard output.
//
// This directory is its own Go module, so that oauth2-proxy (which the load
// run also builds from here, at the version go.mod pins) is not a
// dependency of socialgate.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/oauth2-proxy/oauth2-proxy/v7/pkg/apis/options"
	"github.com/oauth2-proxy/oauth2-proxy/v7/pkg/apis/sessions"
	"github.com/oauth2-proxy/oauth2-proxy/v7/pkg/sessions/cookie"
)

func main() {
	secret := flag.String("cookie-secret", "", "oauth2-proxy's --cookie-secret")
	email := flag.String("email", "ada@example.com", "the session's email")
	user := flag.String("user", "dev-ada", "the session's user (the ID token's sub)")
	flag.Parse()
	if err := mint(*secret, *email, *user); err != nil {
		fmt.Fprintln(os.Stderr, "oauth2proxy-cookie:", err)
		os.Exit(1)
	}
}

// mint writes the Cookie header of a minimal session (what
// --session-cookie-minimal keeps after an OIDC sign-in: no tokens), valid
// for an hour like the dev provider's ID tokens.
func mint(secret, email, user string) error {
	// oauth2-proxy's defaults for the options that shape the cookie, with
	// cookie-secure off for plain HTTP on loopback.
	opts := &options.Cookie{Name: "_oauth2_proxy", Secret: secret, Path: "/", Expire: 168 * time.Hour, HTTPOnly: true}
	store, err := cookie.NewCookieSessionStore(&options.SessionOptions{Type: options.CookieSessionStoreType,
		Cookie: options.CookieStoreOptions{Minimal: true}}, opts)
	if err != nil {
		return err
	}
	now := time.Now()
	expires := now.Add(time.Hour)
	ss := &sessions.SessionState{CreatedAt: &now, ExpiresOn: &expires, Email: email, User: user, PreferredUsername: "ada"}
	rec := httptest.NewRecorder()
	if err := store.Save(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil), ss); err != nil {
		return err
	}
	cookies := rec.Result().Cookies()
	if len(cookies) != 1 {
		return fmt.Errorf("the session store set %d cookies, want 1", len(cookies))
	}
	fmt.Println(cookies[0].Name + "=" + cookies[0].Value)
	return nil
}
