package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/session"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/store/cache"
	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// testGW is a whole gateway on an in-memory store seen through a cache
// that serves what it read within the hour (so a write that forgets what
// it changed shows), with the test OP as the OpenID provider "corp".
type testGW struct {
	*Gateway
	st    store.Store // the cached view the gateway uses
	raw   store.Store // under the cache: another gateway's view
	cache *cache.Cache
	clk   *storetest.Clock // the store's and the cache's: sessions end by it
	op    *testop.Server
	keys  *assertion.KeySet
}

const testPrefix = DefaultPrefix

// newTestGW builds the gateway on an in-memory Badger store; edit, when
// set, changes its config first.
func newTestGW(tb testing.TB, edit func(cfg *Config)) *testGW {
	tb.Helper()
	clk := storetest.NewClock()
	raw, err := badger.Open(badger.Options{InMemory: true, Now: clk.Now, Logger: quietBadger{}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { raw.Close() })
	return newTestGWOn(tb, raw, clk, edit)
}

// newTestGWOn builds the gateway on raw, a store whose clock is clk.
func newTestGWOn(tb testing.TB, raw store.Store, clk *storetest.Clock, edit func(cfg *Config)) *testGW {
	tb.Helper()
	tg := &testGW{raw: raw, cache: cache.New(raw, clk.Now), clk: clk}
	tg.st = tg.cache.Store(time.Hour)
	tg.op = testop.Start(tb, testop.Options{IssueRefreshToken: true})
	corp, err := provider.New(provider.Config{Name: "corp", Kind: provider.KindOIDC, Issuer: tg.op.URL(),
		ClientID: "test-client", ClientSecret: "test-secret", SignIn: true})
	if err != nil {
		tb.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if tg.keys, err = assertion.NewKeySet([]assertion.Key{{Private: key}}, assertion.DefaultKeyDelay); err != nil {
		tb.Fatal(err)
	}
	identity, err := assertion.New(assertion.Options{Keys: tg.keys, Issuer: "socialgate"})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := Config{Store: tg.st, Providers: []*provider.Provider{corp}, CookieSecrets: [][]byte{bytes.Repeat([]byte("g"), 32)},
		Identity: identity}
	if edit != nil {
		edit(&cfg)
	}
	if tg.Gateway, err = New(cfg); err != nil {
		tb.Fatal(err)
	}
	return tg
}

// user signs subject in at corp (through the store, as a callback would):
// a verified address subject@example.com, the scopes openid and email, and
// an access token valid for an hour unless edit changes the account.
func (tg *testGW) user(tb testing.TB, subject string, edit func(a *store.ExternalAccount)) store.SignInResult {
	tb.Helper()
	acc := store.ExternalAccount{Provider: "corp", Issuer: tg.op.URL(), Subject: subject, Email: subject + "@example.com",
		EmailVerified: true, Name: "Name of " + subject, ApprovedScopes: []string{"openid", "email"},
		Tokens: store.TokenSet{AccessToken: "at-" + subject, RefreshToken: "rt-" + subject, TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}}
	if edit != nil {
		edit(&acc)
	}
	res, err := tg.st.SignIn(context.Background(), store.SignIn{Now: time.Now(), Account: acc})
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// signIn signs subject in and starts a session: it returns the session
// and its cookie value (which is also its session token).
func (tg *testGW) signIn(tb testing.TB, subject string) (*store.Session, string) {
	tb.Helper()
	res := tg.user(tb, subject, nil)
	w := httptest.NewRecorder()
	s, err := tg.sessions.Start(context.Background(), w, httptest.NewRequest(http.MethodGet, "/", nil), res.User, nil, session.Auth{AccountID: res.Account.ID})
	if err != nil {
		tb.Fatal(err)
	}
	return s, w.Result().Cookies()[0].Value
}

// claims verifies an identity token with the gateway's published keys.
func (tg *testGW) claims(tb testing.TB, token string) assertion.Claims {
	tb.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(tg.keys.JWKS(), &set); err != nil {
		tb.Fatal(err)
	}
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		tb.Fatalf("identity token %q: %v", token, err)
	}
	var c assertion.Claims
	if err := tok.Claims(set, &c); err != nil {
		tb.Fatalf("identity token does not verify: %v", err)
	}
	return c
}

type quietBadger struct{}

func (quietBadger) Errorf(string, ...any)   {}
func (quietBadger) Warningf(string, ...any) {}
func (quietBadger) Infof(string, ...any)    {}
func (quietBadger) Debugf(string, ...any)   {}
