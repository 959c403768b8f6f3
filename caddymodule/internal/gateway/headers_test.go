package gateway

import (
	"net/http"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The identity headers share one allocation: a later handler that appends to
// or overwrites one of them must leave the others as they were.
func TestSetIdentityHeaders_ValuesDoNotShareAcrossHeaders(t *testing.T) {
	s := &store.Session{ID: "sess_1", UserID: "user_1", Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace",
		Groups: []string{"corp:admins", "github:acme/platform"}}
	h := http.Header{}
	SetIdentityHeaders(h, s, "jwt")
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
	SetIdentityHeaders(h, &store.Session{ID: "sess_2", UserID: "user_2"}, "jwt")
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
			SetIdentityHeaders(h, &tc.s, "jwt")
			if got := h.Get(HeaderUserEmail); got != tc.email {
				t.Errorf("%s = %q, want %q", HeaderUserEmail, got, tc.email)
			}
			if got := h.Values(HeaderUserEmailVerified); len(got) != 1 || got[0] != tc.marker {
				t.Errorf("%s = %q, want [%q]", HeaderUserEmailVerified, got, tc.marker)
			}
		})
	}
}
