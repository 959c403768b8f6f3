package session

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func TestCache_ServesUntilForgottenOrStale(t *testing.T) {
	st, err := store.Open(store.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	res, _ := st.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "s"}})
	m, err := NewManager(st, [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m.now = func() time.Time { return now }
	m.WithCache(5 * time.Second)
	w := httptest.NewRecorder()
	sess, err := m.Start(ctx, w, httptest.NewRequest("GET", "/", nil), res.User, nil, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Cookie", w.Result().Cookies()[0].String())
	lookup := func() bool { s, _, err := m.Lookup(req); return err == nil && s.ID == sess.ID }
	if !lookup() {
		t.Fatal("no session")
	}
	// Deleted behind the manager's back (another gateway): served until stale.
	st.DeleteSession(ctx, sess.ID)
	if !lookup() {
		t.Fatal("the cached session was not served within the TTL")
	}
	now = now.Add(5 * time.Second)
	if lookup() {
		t.Fatal("a stale cache entry outlived the TTL")
	}
	// Forget drops it at once.
	sess2, _ := m.Start(ctx, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil), res.User, nil, Auth{})
	m.cache.put(sess2, now)
	m.Forget(sess2.ID)
	if m.cache.get(sess2.ID, now) != nil {
		t.Fatal("Forget left the session cached")
	}
}
