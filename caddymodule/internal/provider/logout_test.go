package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store/storetest"
	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// opProvider is a generic OIDC provider at a test OP.
func opProvider(t *testing.T, op *testop.Server, signOut bool) *Provider {
	t.Helper()
	p, err := New(Config{Name: "corp", Kind: KindOIDC, Issuer: op.URL(), ClientID: "test-client",
		ClientSecret: "test-secret", SignIn: true, SignOutAtProvider: signOut})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signInAtOP runs an authorization at the test OP and redeems its code.
func signInAtOP(t *testing.T, p *Provider) *Result {
	t.Helper()
	const redirect = "http://127.0.0.1:9/callback"
	authURL, err := p.AuthCodeURL(context.Background(), AuthRequest{RedirectURL: redirect, State: "s", Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Exchange(context.Background(), Callback{Code: loc.Query().Get("code"), Iss: loc.Query().Get("iss"), HasIss: true,
		RedirectURL: redirect, Nonce: "n"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEndSessionURL_CarriesTheRPInitiatedLogoutParameters(t *testing.T) {
	op := testop.Start(t, testop.Options{})
	p := opProvider(t, op, true)
	res := signInAtOP(t, p)
	if res.SID == "" || res.SID != op.LastSID() {
		t.Fatalf("Result.SID = %q, want the id_token's sid %q", res.SID, op.LastSID())
	}
	got, err := p.EndSessionURL(context.Background(), EndSession{IDTokenHint: res.IDToken,
		PostLogoutRedirectURL: "https://app.example/_auth/signed-out", State: "st"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(got)
	want := url.Values{"id_token_hint": {res.IDToken}, "client_id": {"test-client"},
		"post_logout_redirect_uri": {"https://app.example/_auth/signed-out"}, "state": {"st"}}
	if base := strings.Split(got, "?")[0]; base != op.EndSessionURL() || u.Query().Encode() != want.Encode() {
		t.Errorf("EndSessionURL = %s, want %s?%s", got, op.EndSessionURL(), want.Encode())
	}
	if got, err := p.EndSessionURL(context.Background(), EndSession{State: "st"}); err != nil || strings.Contains(got, "id_token_hint") {
		t.Errorf("without an ID token: %s, %v; want no id_token_hint", got, err)
	}
	if got, err := opProvider(t, op, false).EndSessionURL(context.Background(), EndSession{State: "st"}); got != "" || err != nil {
		t.Errorf("with sign_out_at_provider off: %q, %v; want nothing", got, err)
	}
}

func TestNew_RefusesSignOutAtProviderWithoutDiscovery(t *testing.T) {
	for name, cfg := range map[string]Config{
		"oauth2": {Kind: KindOAuth2, AuthURL: "https://p.example/a", TokenURL: "https://p.example/t", UserinfoURL: "https://p.example/u"},
		"github": {Kind: "github"},
		"oidc with every endpoint given": {Kind: KindOIDC, Issuer: "https://p.example", AuthURL: "https://p.example/a",
			TokenURL: "https://p.example/t", JWKSURL: "https://p.example/k"},
	} {
		cfg.Name, cfg.ClientID, cfg.SignOutAtProvider = "p", "c", true
		if _, err := New(cfg); err == nil || !strings.Contains(err.Error(), "sign_out_at_provider") {
			t.Errorf("%s: New = %v, want an error naming sign_out_at_provider", name, err)
		}
	}
}

// TestVerifyLogoutToken_AcceptsOnlyWhatTheSpecAllows plays a hostile
// client: every token but the clean ones must be refused.
func TestVerifyLogoutToken_AcceptsOnlyWhatTheSpecAllows(t *testing.T) {
	op := testop.Start(t, testop.Options{})
	p := opProvider(t, op, false)
	signedIn := signInAtOP(t, p)
	claim := func(k string, v any) func(map[string]string, map[string]any) {
		return func(_ map[string]string, c map[string]any) {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
	}
	header := func(k, v string) func(map[string]string, map[string]any) {
		return func(h map[string]string, _ map[string]any) { h[k] = v }
	}
	now := time.Now()
	for _, tc := range []struct {
		name     string
		sub, sid string
		edit     func(map[string]string, map[string]any)
		ok       bool
	}{
		{"sub and sid", "user-1", "sid-1", nil, true},
		{"sub only", "user-1", "", nil, true},
		{"sid only", "", "sid-1", nil, true},
		{"no exp", "user-1", "", claim("exp", nil), true},
		{"typ JWT", "user-1", "", header("typ", "JWT"), true},
		{"no typ", "user-1", "", func(h map[string]string, _ map[string]any) { delete(h, "typ") }, true},
		{"unsigned", "user-1", "", header("alg", "none"), false},
		{"signed with a key the provider does not publish", "user-1", "", header("kid", "forged"), false},
		{"HS256 with the public key", "user-1", "", header("alg", "HS256"), false},
		{"another audience", "user-1", "", claim("aud", "other-client"), false},
		{"an extra audience without azp", "user-1", "", claim("aud", []string{"test-client", "other-client"}), false},
		{"azp of another client", "user-1", "", claim("azp", "other-client"), false},
		{"another issuer", "user-1", "", claim("iss", "https://other.example"), false},
		{"the issuer with a slash", "user-1", "", claim("iss", op.URL()+"/"), false},
		{"no iat", "user-1", "", claim("iat", nil), false},
		{"iat too old", "user-1", "", claim("iat", now.Add(-LogoutTokenMaxAge-time.Minute).Unix()), false},
		{"iat in the future", "user-1", "", claim("iat", now.Add(10*time.Minute).Unix()), false},
		{"expired", "user-1", "", claim("exp", now.Add(-time.Second).Unix()), false},
		{"no jti", "user-1", "", claim("jti", nil), false},
		{"a jti of 10 KiB", "user-1", "", claim("jti", strings.Repeat("j", 10<<10)), false},
		{"a nonce", "user-1", "", claim("nonce", "n"), false},
		{"an empty nonce", "user-1", "", claim("nonce", ""), false},
		{"no events", "user-1", "", claim("events", nil), false},
		{"events as a list", "user-1", "", claim("events", []string{testop.BackChannelLogoutEvent}), false},
		{"another event", "user-1", "", claim("events", map[string]any{"http://schemas.openid.net/event/other": map[string]any{}}), false},
		{"the event not an object", "user-1", "", claim("events", map[string]any{testop.BackChannelLogoutEvent: "yes"}), false},
		{"neither sub nor sid", "", "", nil, false},
		{"sub of the wrong type", "", "", claim("sub", 42), false},
		{"typ of an access token", "user-1", "", header("typ", "at+jwt"), false},
	} {
		_, err := p.VerifyLogoutToken(context.Background(), op.LogoutToken(tc.sub, tc.sid, tc.edit))
		if tc.ok && err != nil {
			t.Errorf("%s: refused: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, ErrRejected) {
			t.Errorf("%s: err = %v, want ErrRejected", tc.name, err)
		}
	}

	got, err := p.VerifyLogoutToken(context.Background(), op.LogoutToken("user-1", "sid-1", nil))
	if err != nil || got.Issuer != op.URL() || got.Subject != "user-1" || got.SID != "sid-1" || got.JTI == "" ||
		time.Since(got.IssuedAt) > time.Minute {
		t.Errorf("VerifyLogoutToken = %+v, %v", got, err)
	}
	// An ID token is no logout token, nor is a logout token whose payload
	// was changed after signing.
	if _, err := p.VerifyLogoutToken(context.Background(), signedIn.IDToken); !errors.Is(err, ErrRejected) {
		t.Errorf("an ID token: err = %v, want ErrRejected", err)
	}
	parts := strings.Split(op.LogoutToken("user-1", "", nil), ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	json.Unmarshal(payload, &c)
	c["sub"] = "someone-else"
	forged, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(forged)
	if _, err := p.VerifyLogoutToken(context.Background(), strings.Join(parts, ".")); !errors.Is(err, ErrRejected) {
		t.Errorf("a tampered token: err = %v, want ErrRejected", err)
	}
	for _, garbage := range []string{"", "a.b.c", "not a jwt", strings.Repeat("A", 1<<16)} {
		if _, err := p.VerifyLogoutToken(context.Background(), garbage); !errors.Is(err, ErrRejected) {
			t.Errorf("garbage %.10q: err = %v, want ErrRejected", garbage, err)
		}
	}
}

// TestVerifyLogoutToken_FetchesTheKeysAtMostOnceAMinute: found by the
// second red team. Logout tokens come unauthenticated from anyone, and each
// one with a made-up key id, or sent once the key set's short lifetime had
// passed, made the gateway fetch the provider's keys (every 5 to 10 s),
// while docs/logout.md promised at most once a minute. A logout token now
// fetches the keys only when no fetch started in the last minute.
func TestVerifyLogoutToken_FetchesTheKeysAtMostOnceAMinute(t *testing.T) {
	op := testop.Start(t, testop.Options{}) // its keys say no-store: a lifetime of 5 s
	p := opProvider(t, op, false)
	signInAtOP(t, p)
	clock := storetest.NewClock()
	p.cachedDiscovery().keys.keys.now = clock.Now
	withKid := func(kid string) string {
		return op.LogoutToken("user-1", "", func(h map[string]string, _ map[string]any) {
			if kid != "" {
				h["kid"] = kid
			}
		})
	}
	before := op.Calls("jwks")
	for _, st := range []struct {
		name    string
		advance time.Duration
		kid     string // "" is the OP's own
		ok      bool
		fetches int // since the start
	}{
		{"a made-up kid a minute after the sign-in's fetch", time.Minute, "made-up-1", false, 1},
		{"another at once", 0, "made-up-2", false, 1},
		{"one 11 s later, past the set's lifetime", 11 * time.Second, "made-up-3", false, 1},
		{"a genuine token meanwhile: the keys at hand", 11 * time.Second, "", true, 1},
		{"59 s after the last fetch", 37 * time.Second, "made-up-4", false, 1},
		{"a minute after it", time.Second, "made-up-5", false, 2},
		{"a genuine token after that", 30 * time.Second, "", true, 2},
	} {
		clock.Advance(st.advance)
		_, err := p.VerifyLogoutToken(context.Background(), withKid(st.kid))
		if (err == nil) != st.ok || (err != nil && !errors.Is(err, ErrRejected)) {
			t.Errorf("%s: err = %v, want ok %v", st.name, err, st.ok)
		}
		if got := op.Calls("jwks") - before; got != st.fetches {
			t.Errorf("%s: %d key fetches, want %d", st.name, got, st.fetches)
		}
	}
}
