package flow

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/session"
)

// The binding cookie holds a random binding (the pending flows record its
// hash) and the time of the browser's latest start, sealed with the cookie
// keys: a value the gateway did not seal, or sealed more than TTL ago,
// counts for nothing, so a planted garbage cookie neither binds a flow nor
// locks the browser out, and a planted real one (from the attacker's own
// start) stops counting TTL after it was made.

// binding returns the browser's binding and sets the cookie again, so that
// it lives TTL from this start: a second flow started late in the first
// one's life gets its whole TTL. A browser that carries one valid binding
// keeps it, and flows it started in other tabs stay valid; one that carries
// none or several (one was planted) gets a new one. A provider that answers
// with a cross-site POST (form_post) needs SameSite=None, or the browser
// would not send the cookie with the callback; it is Secure over TLS, as
// browsers require.
func (f *Flow) binding(w http.ResponseWriter, r *http.Request, formPost bool) (string, error) {
	v, n := f.presentedBinding(r)
	if n != 1 {
		v = randomString()
	}
	sealed, err := f.Sessions.Seal(BindingCookie, []byte(v+"|"+strconv.FormatInt(f.now().Unix(), 10)))
	if err != nil {
		return "", fmt.Errorf("sealing the binding cookie: %w", err)
	}
	sameSite := http.SameSiteLaxMode
	if formPost {
		sameSite = http.SameSiteNoneMode
	}
	http.SetCookie(w, &http.Cookie{
		Name:     session.Name(r, BindingCookie),
		Value:    sealed,
		Path:     "/",
		MaxAge:   int(f.TTL / time.Second),
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: sameSite,
	})
	return v, nil
}

// presentedBinding returns the binding the request's cookies carry and how
// many different valid bindings they carry: a callback is bound only when
// that is exactly one. Two mean one was planted (cookie tossing, login
// CSRF): neither is taken.
func (f *Flow) presentedBinding(r *http.Request) (binding string, n int) {
	for _, c := range session.Values(r, session.Name(r, BindingCookie)) {
		raw, ok := f.Sessions.Open(BindingCookie, c)
		if !ok {
			continue
		}
		v, stamp, _ := strings.Cut(string(raw), "|")
		sec, err := strconv.ParseInt(stamp, 10, 64)
		if err != nil || !validToken(v) || f.now().Sub(time.Unix(sec, 0)) > f.TTL {
			continue
		}
		if n == 0 || v != binding {
			binding, n = v, n+1
		}
	}
	return binding, n
}
