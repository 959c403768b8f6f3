package session

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
)

// Sessions are read through the store's cache: served until stale, and
// gone at once when this manager ends them.
func TestCache_ServesUntilEndedOrStale(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	res, _ := st.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: "s"}})
	now := time.Now()
	clock := func() time.Time { return now }
	m, err := NewManager(cache.New(st, clock).Store(5*time.Second), [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	m.now = clock
	m.RememberVerified()
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
	// Ended through the manager: gone at once.
	w = httptest.NewRecorder()
	sess2, _ := m.Start(ctx, w, httptest.NewRequest("GET", "/", nil), res.User, nil, Auth{})
	req.Header.Set("Cookie", w.Result().Cookies()[0].String())
	if s, _, err := m.Lookup(req); err != nil || s.ID != sess2.ID {
		t.Fatal("no session")
	}
	if err := m.End(ctx, httptest.NewRecorder(), req, sess2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := m.Lookup(req); err == nil {
		t.Fatal("the cache served a session the manager ended")
	}
}

// cacheEnv is a manager reading through a 1-hour cache over an in-memory
// store (st, which another gateway would change behind the cache's back).
type cacheEnv struct {
	t  *testing.T
	st store.Store
	c  *cache.Cache
	m  *Manager
}

func newCacheEnv(t *testing.T, st store.Store) *cacheEnv {
	t.Helper()
	if st == nil {
		b, err := badger.Open(badger.Options{InMemory: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		st = b
	}
	c := cache.New(st, nil)
	m, err := NewManager(c.Store(time.Hour), [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return &cacheEnv{t: t, st: st, c: c, m: m.RememberVerified()}
}

// signIn starts a session of the subject's user and returns a request
// carrying its cookie.
func (e *cacheEnv) signIn(subject string) (*store.Session, *http.Request) {
	e.t.Helper()
	ctx := context.Background()
	res, err := e.st.SignIn(ctx, store.SignIn{Now: time.Now(), Account: store.ExternalAccount{Provider: "p", Issuer: "https://i", Subject: subject}})
	if err != nil {
		e.t.Fatal(err)
	}
	w := httptest.NewRecorder()
	sess, err := e.m.Start(ctx, w, httptest.NewRequest("GET", "/", nil), res.User, nil, Auth{})
	if err != nil {
		e.t.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Cookie", w.Result().Cookies()[0].String())
	return sess, req
}

func (e *cacheEnv) live(req *http.Request) bool {
	_, _, err := e.m.Lookup(req)
	return err == nil
}

// Another gateway ended sessions; hearing of it (the store's listener)
// drops exactly what it names.
func TestCache_ChangesHeardDropWhatAnotherGatewayEnded(t *testing.T) {
	e := newCacheEnv(t, nil)
	ctx := context.Background()
	ann, annReq := e.signIn("ann")
	ann2, token, err := e.m.Issue(ctx, httptest.NewRequest("GET", "/", nil), &store.User{ID: ann.UserID}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ann2Req := httptest.NewRequest("GET", "/", nil)
	ann2Req.Header.Set("Authorization", "Bearer "+token)
	bob, bobReq := e.signIn("bob")
	for _, r := range []*http.Request{annReq, ann2Req, bobReq} {
		if !e.live(r) {
			t.Fatal("a fresh session is not live")
		}
	}
	// Ended behind this manager's back: the cache still serves them all.
	for _, id := range []string{ann.ID, ann2.ID, bob.ID} {
		e.st.RevokeSession(ctx, id)
	}
	if !e.live(annReq) || !e.live(bobReq) {
		t.Fatal("the cache did not serve the sessions ended elsewhere (the test needs it to)")
	}
	e.c.ForgetUsers(ann.UserID)
	if e.live(annReq) || e.live(ann2Req) {
		t.Error("a session of the forgotten user is still served")
	}
	if !e.live(bobReq) {
		t.Error("ForgetUsers dropped another user's session")
	}
	e.c.ForgetAll()
	if e.live(bobReq) {
		t.Error("ForgetAll left a session cached")
	}
}

// raceStore ends the session, and lets the manager hear of it, while the
// manager's read of it is on its way back: the read must not be cached.
type raceStore struct {
	store.Store
	during func()
}

func (r *raceStore) Session(ctx context.Context, id string) (*store.Session, error) {
	s, err := r.Store.Session(ctx, id)
	if r.during != nil {
		r.during()
		r.during = nil
	}
	return s, err
}

func TestCache_AReadThatRacedARevocationIsNotCached(t *testing.T) {
	b, err := badger.Open(badger.Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rs := &raceStore{Store: b}
	e := newCacheEnv(t, rs)
	sess, req := e.signIn("cy")
	rs.during = func() {
		b.RevokeSession(context.Background(), sess.ID)
		e.c.ForgetUsers(sess.UserID) // the notification arrives
	}
	if !e.live(req) {
		t.Fatal("the read that raced the revocation should still see the session it read")
	}
	if e.live(req) {
		t.Error("the revoked session was cached from a read older than the revocation")
	}
}

// End ends the session that authenticated the request, whichever
// credential carried it: a native app's token as well as a cookie.
func TestEnd_EndsTheSessionThatAuthenticatedTheRequest(t *testing.T) {
	e := newCacheEnv(t, nil)
	ctx := context.Background()
	cookieSess, cookieReq := e.signIn("ann")
	_, token, err := e.m.Issue(ctx, httptest.NewRequest("GET", "/", nil), &store.User{ID: cookieSess.UserID}, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	tokenReq := httptest.NewRequest("POST", "/", nil)
	tokenReq.Header.Set("Authorization", "Bearer "+token)
	for name, r := range map[string]*http.Request{"token": tokenReq, "cookie": cookieReq} {
		s, _, err := e.m.Lookup(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := e.m.End(ctx, httptest.NewRecorder(), r, s); err != nil {
			t.Fatal(err)
		}
		if e.live(r) {
			t.Errorf("the %s's session outlived End", name)
		}
	}
}
