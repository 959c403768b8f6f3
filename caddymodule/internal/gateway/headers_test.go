package gateway

import (
	"net/http"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The identity headers share one allocation: a later handler that appends to
// or overwrites one of them must leave the others as they were.
func TestSetIdentityHeaders_ValuesDoNotShareAcrossHeaders(t *testing.T) {
	s := &store.Session{ID: "sess_1", UserID: "user_1", Email: "ada@example.com", Name: "Ada Lovelace",
		Groups: []string{"corp:admins", "github:acme/platform"}}
	h := http.Header{}
	SetIdentityHeaders(h, s, "jwt")
	want := map[string]string{HeaderUserID: "user_1", HeaderSessionID: "sess_1", HeaderUserEmail: "ada@example.com",
		HeaderUserName: "Ada Lovelace", HeaderIdentity: "jwt", HeaderUserGroups: "corp:admins,github:acme/platform"}
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
