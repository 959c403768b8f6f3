package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The identity headers share one allocation: a later handler that appends to
// or overwrites one of them must leave the others as they were.
func TestSetIdentityHeaders_ValuesDoNotShareAcrossHeaders(t *testing.T) {
	s := &store.Session{ID: "sess_1", UserID: "user_1", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace",
		Groups: []string{"corp:admins", "github:acme/platform"}}
	h := http.Header{}
	setIdentityHeaders(h, s, "jwt", false)
	want := map[string]string{HeaderUserID: "user_1", HeaderSessionID: "sess_1", HeaderUserEmail: "ada@example.com",
		HeaderUserEmailVerified: "true", HeaderUserName: "Ada Lovelace", HeaderIdentity: "jwt",
		HeaderUserGroups: "corp:admins,github:acme/platform"}
	for name, value := range want {
		if got := h[name]; len(got) != 1 || got[0] != value {
			t.Fatalf("%s = %q, want [%q]", name, got, value)
		}
	}
	h.Add(HeaderUserID, "appended")       // as header_up +X-Auth-User-Id does
	h[HeaderSessionID][0] = "overwritten" // as a handler editing in place does
	want[HeaderUserID] = "user_1"
	delete(want, HeaderSessionID)
	for name, value := range want {
		if got := h[name]; got[0] != value || (name != HeaderUserID && len(got) != 1) {
			t.Errorf("after changing two other headers, %s = %q, want %q", name, got, value)
		}
	}
	if got := h[HeaderUserID]; len(got) != 2 || got[1] != "appended" {
		t.Errorf("%s = %q, want the appended value after the first", HeaderUserID, got)
	}

	// A session without email or name sets no empty headers.
	h = http.Header{}
	setIdentityHeaders(h, &store.Session{ID: "sess_2", UserID: "user_2"}, "jwt", false)
	for _, name := range []string{HeaderUserEmail, HeaderUserName, HeaderUserGroups} {
		if _, ok := h[name]; ok {
			t.Errorf("%s set for a session without it: %q", name, h[name])
		}
	}
}

// Only a verified address goes upstream as the user's email; the verified
// header says which case the upstream is in.
func TestSetIdentityHeaders_EmailOnlyWhenVerified(t *testing.T) {
	for _, tc := range []struct {
		name          string
		s             store.Session
		email, marker string
	}{
		{"verified", store.Session{Email: "ada@example.com", EmailVerified: true}, "ada@example.com", "true"},
		{"none", store.Session{}, "", "false"},
		// A session stored before verification was recorded may hold an
		// unverified address: it stays home.
		{"stored without verification", store.Session{Email: "ceo@example.com"}, "", "false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.s.ID, tc.s.UserID = "sess_1", "user_1"
			h := http.Header{}
			setIdentityHeaders(h, &tc.s, "jwt", false)
			if got := h.Get(HeaderUserEmail); got != tc.email {
				t.Errorf("%s = %q, want %q", HeaderUserEmail, got, tc.email)
			}
			if got := h.Values(HeaderUserEmailVerified); len(got) != 1 || got[0] != tc.marker {
				t.Errorf("%s = %q, want [%q]", HeaderUserEmailVerified, got, tc.marker)
			}
		})
	}
}

func TestOwned_SmuggledFindsTheGatewaysHeadersInConnectionAndTrailers(t *testing.T) {
	owned := newOwned("X-Upstream-Token")
	for _, tc := range []struct {
		connection []string
		trailer    []string
		want       bool
	}{
		{[]string{"keep-alive"}, nil, false},
		{[]string{"keep-alive, Upgrade", "X-Custom"}, []string{"X-Checksum"}, false},
		{[]string{"X-Auth-User-Id"}, nil, true},
		{[]string{"keep-alive,x-auth-jwt"}, nil, true},
		{[]string{"keep-alive", " \tX_AUTH_SESSION_ID\t "}, nil, true},
		{[]string{",,authorization,"}, nil, true},
		{[]string{"COOKIE"}, nil, true},
		{[]string{"x-upstream-token"}, nil, true},
		{[]string{"X-Upstream-Tokens"}, nil, false},
		{[]string{"X.Auth.User.Id"}, nil, true},
		{[]string{"x_upstream.token"}, nil, true},
		{[]string{"X-Auth"}, nil, false},
		{nil, []string{"X-Checksum", "X-Auth-User-Email"}, true},
		{nil, []string{"Authorization"}, true},
		{nil, []string{"X-Upstream-Token"}, true},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("body"))
		r.Header["Connection"] = tc.connection
		for _, name := range tc.trailer {
			if r.Trailer == nil {
				r.Trailer = http.Header{}
			}
			r.Trailer[name] = nil
		}
		if got := owned.smuggled(r); got != tc.want {
			t.Errorf("Connection %q, trailers %q: smuggled = %v, want %v", tc.connection, tc.trailer, got, tc.want)
		}
	}
}

// Trailers that arrive with the end of the body (HTTP/1.1 merges undeclared
// ones into r.Trailer then) lose the gateway's headers before the reader
// that reached the end sees io.EOF.
func TestOwned_GuardTrailersDropsTheGatewaysHeadersAtTheEnd(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	trailer := http.Header{"X-Checksum": nil}
	r.Trailer = trailer
	r.Body = io.NopCloser(&endWithTrailers{r: strings.NewReader("hello"), at: func() {
		trailer.Set("X-Checksum", "42")
		trailer.Set("X-Auth-User-Id", "user_attacker")
		trailer["X_auth_jwt"] = []string{"forged"}
		trailer.Set("Cookie", "socialgate_session=x")
		trailer.Set("X-Upstream-Token", "forged")
	}})
	newOwned("X-Upstream-Token").guardTrailers(r)
	if b, err := io.ReadAll(r.Body); err != nil || string(b) != "hello" {
		t.Fatalf("body %q, %v", b, err)
	}
	if len(trailer) != 1 || trailer.Get("X-Checksum") != "42" {
		t.Errorf("trailers after the body: %v, want X-Checksum only", trailer)
	}
}

// endWithTrailers calls at when r ends, as net/http fills r.Trailer.
type endWithTrailers struct {
	r  io.Reader
	at func()
}

func (e *endWithTrailers) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF {
		e.at()
	}
	return n, err
}

// The namespace is one rule in every spelling an upstream reads as the same
// name: any case, and "_" or "." for "-" (CGI, PHP, WSGI, Rack).
func TestStripIdentityHeaders_EverySpellingOfTheNamespace(t *testing.T) {
	h := http.Header{}
	for _, name := range []string{"X-Auth-User-Id", "x-auth-jwt", "X_Auth_User_Groups", "X.Auth.Session.Id", "X-AUTH.user_email", "x_auth-"} {
		h[name] = []string{"forged"}
	}
	keep := []string{"X-Auth", "X-Authorization", "Xx-Auth-User-Id", "X-Aut-User-Id", "X Auth-User-Id", "Authorization"}
	for _, name := range keep {
		h[name] = []string{"kept"}
	}
	StripIdentityHeaders(h)
	if len(h) != len(keep) {
		t.Errorf("after stripping: %v, want only %q", h, keep)
	}
	for _, name := range keep {
		if h[name] == nil {
			t.Errorf("%s was stripped", name)
		}
	}
}
