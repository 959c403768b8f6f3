package session_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
)

// Lookup is the first thing every protected request costs: parse the Cookie
// header, authenticate and decrypt the session cookie, read the session.
//
//	go test ./caddymodule/internal/session -run '^$' -bench . -benchmem

// otherCookies is what a browser sends a site besides the gateway's cookie.
const otherCookies = "_ga=GA1.1.1234567890.1700000000; theme=dark; _ga_ABCDEF1234=GS1.1.1700000000.3.1.1700000100.0.0.0; csrftoken=Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"

var (
	currentKey = bytes.Repeat([]byte("c"), 32)
	olderKey   = bytes.Repeat([]byte("o"), 32)
)

// oneSession answers Session with a fixed record and leaves every other
// method unimplemented: it isolates the cookie's cost from the store's.
type oneSession struct {
	store.Store
	s *store.Session
}

func (o oneSession) Session(_ context.Context, id string) (*store.Session, error) {
	if id != o.s.ID {
		return nil, store.ErrNotFound
	}
	return o.s, nil
}

// signedIn starts a session for a new user in st with the cookie keys of
// encodeWith, and returns a browser request that carries its cookie among
// others.
func signedIn(b *testing.B, st store.Store, encodeWith [][]byte) *http.Request {
	b.Helper()
	ctx := context.Background()
	res, err := st.SignIn(ctx, store.SignIn{Account: store.ExternalAccount{Provider: "dev", Issuer: "http://dev", Subject: "ada",
		Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace"}})
	if err != nil {
		b.Fatal(err)
	}
	m, err := session.NewManager(st, encodeWith, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	if _, err := m.Start(ctx, rec, httptest.NewRequest(http.MethodGet, "/", nil), res.User, nil, session.Auth{}); err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
	r.Header.Set("Cookie", otherCookies+"; "+rec.Result().Cookies()[0].String())
	return r
}

func openMemory(b *testing.B) *badger.Store {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quiet{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	return st
}

func BenchmarkLookup(b *testing.B) {
	b.Run("memory-store", func(b *testing.B) {
		st := openMemory(b)
		r := signedIn(b, st, [][]byte{currentKey})
		m, _ := session.NewManager(st, [][]byte{currentKey}, time.Hour)
		benchLookup(b, m, r, nil)
	})
	// The cookie alone: the store answers from a variable.
	b.Run("cookie-only", func(b *testing.B) {
		st := openMemory(b)
		r := signedIn(b, st, [][]byte{currentKey})
		s, err := session.NewManager(st, [][]byte{currentKey}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		sess, _, _ := s.Lookup(r)
		m, _ := session.NewManager(oneSession{s: sess}, [][]byte{currentKey}, time.Hour)
		benchLookup(b, m, r, nil)
	})
	// After a rotation, cookies of the older key fail the first codec's MAC.
	b.Run("cookie-only-rotated", func(b *testing.B) {
		st := openMemory(b)
		r := signedIn(b, st, [][]byte{olderKey})
		s, _ := session.NewManager(st, [][]byte{olderKey}, time.Hour)
		sess, _, _ := s.Lookup(r)
		m, _ := session.NewManager(oneSession{s: sess}, [][]byte{currentKey, olderKey}, time.Hour)
		benchLookup(b, m, r, nil)
	})
	// A native app's session token in Authorization: Bearer, after the
	// Cookie header is searched in vain.
	b.Run("bearer-token", func(b *testing.B) {
		st := openMemory(b)
		r := signedIn(b, st, [][]byte{currentKey})
		m, _ := session.NewManager(st, [][]byte{currentKey}, time.Hour)
		sess, _, _ := m.Lookup(r)
		user, err := st.User(context.Background(), sess.UserID)
		if err != nil {
			b.Fatal(err)
		}
		_, token, err := m.Issue(context.Background(), r, user, "", 0)
		if err != nil {
			b.Fatal(err)
		}
		r.Header.Set("Cookie", otherCookies)
		r.Header.Set("Authorization", "Bearer "+token)
		benchLookup(b, m, r, nil)
	})
	b.Run("no-cookie", func(b *testing.B) {
		m, _ := session.NewManager(openMemory(b), [][]byte{currentKey}, time.Hour)
		r := httptest.NewRequest(http.MethodGet, "/dashboard", nil)
		r.Header.Set("Cookie", otherCookies)
		benchLookup(b, m, r, session.ErrNoSession)
	})
	b.Run("tampered-cookie", func(b *testing.B) {
		st := openMemory(b)
		r := signedIn(b, st, [][]byte{olderKey})
		m, _ := session.NewManager(st, [][]byte{currentKey}, time.Hour)
		benchLookup(b, m, r, session.ErrNoSession)
	})
}

func benchLookup(b *testing.B, m *session.Manager, r *http.Request, want error) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := m.Lookup(r); err != want {
			b.Fatalf("Lookup = %v, want %v", err, want)
		}
	}
}

func BenchmarkCheckCSRF(b *testing.B) {
	m, _ := session.NewManager(openMemory(b), [][]byte{currentKey}, time.Hour)
	token := m.CSRFToken("sess_abcdefghijklmnopqrstuvwxyz")
	b.ReportAllocs()
	for b.Loop() {
		if !m.CheckCSRF("sess_abcdefghijklmnopqrstuvwxyz", token) {
			b.Fatal("CSRF token refused")
		}
	}
}

type quiet struct{}

func (quiet) Errorf(string, ...any)   {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Debugf(string, ...any)   {}
