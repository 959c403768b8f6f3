package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// The backend's token read, GET /users/{id}/oauth_access_tokens/oauth_custom_dev
// with a fresh token (no provider call), on an in-memory store.
//
//	go test ./caddymodule/internal/api -run '^$' -bench . -benchmem

const benchKey = "sk_test_0123456789abcdef0123456789abcdef"

// discard keeps only the status and the header map, cleared per request.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discard) WriteHeader(s int)           { d.status = s }

func BenchmarkOAuthAccessTokens(b *testing.B) {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quiet{}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	res, err := st.SignIn(context.Background(), store.SignIn{Account: store.ExternalAccount{
		Provider: "dev", Issuer: "http://127.0.0.1:9999", Subject: "ada",
		Email: "ada@example.com", EmailVerified: true, Name: "Ada Lovelace",
		ApprovedScopes: []string{"openid", "email", "profile"},
		Tokens: store.TokenSet{AccessToken: "dev-access-token", RefreshToken: "dev-refresh-token",
			TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)},
	}})
	if err != nil {
		b.Fatal(err)
	}
	a := api.New(api.Options{Ops: ops.New(ops.Options{Store: st, Tokens: tokens.New(tokens.Options{Store: st}), Providers: configured("dev")}),
		Keys: []string{benchKey}})
	path := "/users/" + res.User.ID + "/oauth_access_tokens/oauth_custom_dev"

	for _, bc := range []struct {
		name, key string
		want      int
	}{
		{"fresh-token", benchKey, http.StatusOK},
		{"wrong-key", "sk_wrong", http.StatusUnauthorized},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodGet, "/_auth/api/v1"+path, nil)
			r.Header.Set("Authorization", "Bearer "+bc.key)
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				a.ServeHTTP(w, r, path)
				if w.status != bc.want {
					b.Fatalf("status %d, want %d", w.status, bc.want)
				}
			}
			b.ReportMetric(float64(w.n)/float64(b.N), "body-B/op")
		})
	}
}

type quiet struct{}

func (quiet) Errorf(string, ...any)   {}
func (quiet) Warningf(string, ...any) {}
func (quiet) Infof(string, ...any)    {}
func (quiet) Debugf(string, ...any)   {}
