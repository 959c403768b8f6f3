package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
)

// Every provider token the API hands out is one audit entry: which key (by
// fingerprint, never the key), from where, which user, provider and
// account, when. Refused and failed reads hand out nothing and record
// nothing.
func TestOAuthAccessTokens_AuditsEveryTokenHandedOut(t *testing.T) {
	st, err := badger.Open(badger.Options{InMemory: true, Logger: quiet{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	account := func(provider, subject, user string, expiry time.Time) *store.ExternalAccount {
		t.Helper()
		res, err := st.SignIn(ctx, store.SignIn{LinkToUser: user, Account: store.ExternalAccount{
			Provider: provider, Issuer: "https://" + provider + ".example", Subject: subject,
			Tokens: store.TokenSet{AccessToken: provider + "-access-" + subject, TokenType: "Bearer", Expiry: expiry},
		}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Account
	}
	hour := time.Now().Add(time.Hour)
	work := account("github", "ada-work", "", hour)
	home := account("github", "ada-home", work.UserID, hour)
	lab := account("gitlab", "ada", work.UserID, hour)
	// An expired token that cannot be refreshed: nothing handed out.
	account("corp", "ada", work.UserID, time.Now().Add(-time.Hour))

	core, logs := observer.New(zapcore.InfoLevel)
	const keyA, keyB = "sk_audit_first_key_0123456789abcdef", "sk_audit_second_key_0123456789abcdef"
	a := api.New(api.Options{Ops: ops.New(ops.Options{Store: st, Tokens: tokens.New(tokens.Options{Store: st}),
		Providers: configured("github", "gitlab", "corp"),
		Audit:     audit.New(zap.New(core).Named("socialgate").Named("audit"))}), Keys: []string{keyA, keyB},
		ClientIP: func(*http.Request) string { return "198.51.100.9" }})
	get := func(key, provider string) int {
		path := "/users/" + work.UserID + "/oauth_access_tokens/" + provider
		r := httptest.NewRequest(http.MethodGet, "/_auth/api/v1"+path, nil)
		r.Header.Set("Authorization", "Bearer "+key)
		w := httptest.NewRecorder()
		a.ServeHTTP(w, r, path)
		return w.Code
	}
	fingerprint := func(key string) string {
		sum := sha256.Sum256([]byte(key))
		return "api_key:" + hex.EncodeToString(sum[:])[:12]
	}

	before := time.Now()
	for _, tc := range []struct {
		key, provider string
		status        int
		accounts      []string // audited, in order
	}{
		{keyB, "oauth_github", http.StatusOK, []string{work.ID, home.ID}},
		{keyA, "gitlab", http.StatusOK, []string{lab.ID}},
		{"sk_wrong", "oauth_github", http.StatusUnauthorized, nil},
		{keyA, "corp", http.StatusUnprocessableEntity, nil},
		// A provider that is not configured is not found (it was an
		// empty list, which hid a typo in the name).
		{keyA, "discord", http.StatusNotFound, nil},
	} {
		logs.TakeAll()
		if got := get(tc.key, tc.provider); got != tc.status {
			t.Fatalf("%s: status %d, want %d", tc.provider, got, tc.status)
		}
		entries := logs.TakeAll()
		if len(entries) != len(tc.accounts) {
			t.Fatalf("%s with %.12s…: %d audit entries, want %d", tc.provider, tc.key, len(entries), len(tc.accounts))
		}
		for i, e := range entries {
			f := e.ContextMap()
			if e.LoggerName != "socialgate.audit" || e.Message != audit.ActionReadToken {
				t.Errorf("entry from logger %q, message %q", e.LoggerName, e.Message)
			}
			when, _ := f["time"].(time.Time)
			if f["actor"] != fingerprint(tc.key) || f["client_ip"] != "198.51.100.9" || f["user_id"] != work.UserID ||
				f["provider"] != strings.TrimPrefix(tc.provider, "oauth_") || f["external_account_id"] != tc.accounts[i] ||
				when.Before(before) || when.After(time.Now()) {
				t.Errorf("%s entry %d: %v", tc.provider, i, f)
			}
			for _, v := range f {
				if s, ok := v.(string); ok && (strings.Contains(s, "sk_audit") || strings.Contains(s, "-access-")) {
					t.Errorf("an audit entry holds a secret: %q", s)
				}
			}
		}
	}
}

// provider is a configured provider of the API's tests, by name.
type provider string

func (p provider) Name() string                    { return string(p) }
func (p provider) DisplayName() string             { return string(p) }
func (p provider) SignIn() bool                    { return true }
func (p provider) Reachable(context.Context) error { return nil }
func (p provider) CanRevoke() bool                 { return false }
func (p provider) Revoke(context.Context, string, string, string) error {
	return nil
}

// configured lists providers of these names.
func configured(names ...string) []ops.Provider {
	out := make([]ops.Provider, len(names))
	for i, n := range names {
		out[i] = provider(n)
	}
	return out
}
