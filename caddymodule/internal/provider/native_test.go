package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const bundleID = "com.example.ios"

// newNativeApple is an apple provider that accepts native sign-ins from
// bundleID, against a fake Apple.
func newNativeApple(t *testing.T) (*fakeProvider, *Provider, string) {
	t.Helper()
	f := newFake(t, "apple")
	raw := "raw-nonce-from-the-app"
	h := sha256.Sum256([]byte(raw))
	f.nonce = hex.EncodeToString(h[:])
	f.setClaim("aud", bundleID)
	p, err := New(Config{Name: "apple", Kind: "apple", ClientID: testClientID, Issuer: f.url(""),
		AuthURL: f.url("/auth/authorize"), TokenURL: f.url("/token"), JWKSURL: f.url("/jwks"), RevokeURL: f.url("/auth/revoke"),
		TeamID: "TEAM123456", KeyID: "KEY1234567", PrivateKey: appleKeyPEM, BundleIDs: []string{bundleID, "com.example.watch"}})
	if err != nil {
		t.Fatal(err)
	}
	return f, p, raw
}

func TestExchangeNative_VerifiesTheIdentityTokenAndRedeemsTheCode(t *testing.T) {
	f, p, raw := newNativeApple(t)
	res, err := p.ExchangeNative(context.Background(), NativeApple{IDToken: f.idToken(), Code: goodCode, RawNonce: raw,
		GivenName: "Jane", FamilyName: "Appleseed"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile.Subject == "" || res.Profile.Name != "Jane Appleseed" || res.Issuer != f.url("") || res.Token.RefreshToken == "" ||
		res.ClientID != bundleID {
		t.Errorf("result %+v", res)
	}
	req, _ := f.last("/token")
	form := req.form()
	if form.Get("client_id") != bundleID || form.Get("redirect_uri") != "" {
		t.Errorf("token request client_id %q redirect_uri %q", form.Get("client_id"), form.Get("redirect_uri"))
	}
	secret, err := jwt.ParseSigned(form.Get("client_secret"), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	var c jwt.Claims
	if err := secret.Claims(&appleKey.PublicKey, &c); err != nil || c.Subject != bundleID || c.Issuer != "TEAM123456" {
		t.Errorf("client secret for the bundle: %+v %v", c, err)
	}
}

func TestExchangeNative_Rejects(t *testing.T) {
	cases := []struct {
		name  string
		setup func(f *fakeProvider, in *NativeApple)
	}{
		{"raw nonce that does not hash to the token's", func(f *fakeProvider, in *NativeApple) { in.RawNonce = "other" }},
		{"nonce sent unhashed", func(f *fakeProvider, in *NativeApple) {
			f.nonce = in.RawNonce
			in.IDToken = f.idToken()
		}},
		{"another app's token", func(f *fakeProvider, in *NativeApple) {
			f.setClaim("aud", "com.other.app")
			in.IDToken = f.idToken()
		}},
		{"the web client's token", func(f *fakeProvider, in *NativeApple) {
			f.setClaim("aud", testClientID)
			in.IDToken = f.idToken()
		}},
		{"two audiences", func(f *fakeProvider, in *NativeApple) {
			f.setClaim("aud", []string{bundleID, "com.example.watch"})
			in.IDToken = f.idToken()
		}},
		{"tampered token", func(f *fakeProvider, in *NativeApple) {
			parts := strings.Split(in.IDToken, ".")
			parts[1] = strings.Repeat("A", len(parts[1]))
			in.IDToken = strings.Join(parts, ".")
		}},
		{"alg none", func(f *fakeProvider, in *NativeApple) {
			parts := strings.Split(in.IDToken, ".")
			in.IDToken = "eyJhbGciOiJub25lIn0." + parts[1] + "."
		}},
		{"code of another person", func(f *fakeProvider, in *NativeApple) {
			f.setClaim("sub", "000999.someone.else")
			token := f.idToken()
			f.setClaim("sub", nil)
			f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"r","id_token":"` + token + `"}`))
			}
		}},
		{"refused code", func(f *fakeProvider, in *NativeApple) { in.Code = "used-code" }},
		{"missing nonce", func(f *fakeProvider, in *NativeApple) { in.RawNonce = "" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, p, raw := newNativeApple(t)
			in := NativeApple{IDToken: f.idToken(), Code: goodCode, RawNonce: raw}
			tc.setup(f, &in)
			_, err := p.ExchangeNative(context.Background(), in)
			if !errors.Is(err, ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected", err)
			}
			if strings.Contains(err.Error(), goodCode) || strings.Contains(err.Error(), raw) {
				t.Error("the error carries the code or the nonce")
			}
		})
	}
}

// A native app's grant is the bundle's: Apple refreshes and revokes it
// only for that client, with a client secret signed for it.
func TestNativeGrant_RefreshesAndRevokesAsTheBundle(t *testing.T) {
	ctx := context.Background()
	f, p, _ := newNativeApple(t)
	bundleSecret := func(form url.Values) string {
		secret, err := jwt.ParseSigned(form.Get("client_secret"), []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var c jwt.Claims
		if err := secret.Claims(&appleKey.PublicKey, &c); err != nil {
			t.Fatal(err)
		}
		return c.Subject
	}
	if _, err := p.Refresh(ctx, bundleID, liveRefresh); err != nil {
		t.Fatal(err)
	}
	req, _ := f.last("/token")
	if form := req.form(); form.Get("client_id") != bundleID || bundleSecret(form) != bundleID {
		t.Errorf("refresh as client %q with a secret for %q, want the bundle", form.Get("client_id"), bundleSecret(form))
	}
	if err := p.Revoke(ctx, bundleID, "at", liveRefresh); err != nil {
		t.Fatal(err)
	}
	req, _ = f.last("/auth/revoke")
	if form := req.form(); form.Get("client_id") != bundleID || bundleSecret(form) != bundleID || form.Get("token") != liveRefresh {
		t.Errorf("revoke as client %q with a secret for %q", form.Get("client_id"), bundleSecret(form))
	}
	// The web client's grants stay the web client's.
	if _, err := p.Refresh(ctx, "", liveRefresh); err != nil {
		t.Fatal(err)
	}
	if req, _ = f.last("/token"); req.form().Get("client_id") != testClientID {
		t.Errorf("a web grant refreshed as %q", req.form().Get("client_id"))
	}
	// A bundle id taken out of the config: its grants are dead, not sent as
	// another client.
	requests := func() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.requests) }
	before := requests()
	if _, err := p.Refresh(ctx, "com.removed.app", liveRefresh); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("refresh for a removed bundle: %v, want ErrInvalidGrant", err)
	}
	if requests() != before {
		t.Error("a grant of an unknown client reached the provider")
	}
}

func TestExchangeNative_NeedsBundleIDs(t *testing.T) {
	f := newFake(t, "apple")
	p, err := New(Config{Name: "apple", Kind: "apple", ClientID: testClientID, Issuer: f.url(""), JWKSURL: f.url("/jwks"),
		TeamID: "TEAM123456", KeyID: "KEY1234567", PrivateKey: appleKeyPEM})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ExchangeNative(context.Background(), NativeApple{IDToken: "x", Code: "y", RawNonce: "z"}); !errors.Is(err, ErrNativeNotConfigured) {
		t.Fatalf("err = %v", err)
	}
	if _, err := New(Config{Name: "g", Kind: "google", ClientID: "c", BundleIDs: []string{bundleID}}); err == nil {
		t.Error("bundle_ids accepted on google")
	}
	if _, err := New(Config{Name: "apple", Kind: "apple", ClientID: testClientID, TeamID: "T", KeyID: "K",
		PrivateKey: appleKeyPEM, BundleIDs: []string{"not a bundle"}}); err == nil || !strings.Contains(err.Error(), "bundle_ids") {
		t.Errorf("a bad bundle id: %v", err)
	}
}

const (
	iosClientID     = "ios.apps.example"
	androidClientID = "android.apps.example"
)

// newNativeGoogle is a google provider that takes ID tokens of its iOS and
// Android apps (and, when webToo, of its web client), against a fake Google.
func newNativeGoogle(t *testing.T, webToo bool) (*fakeProvider, *Provider) {
	t.Helper()
	f := newFake(t, "google")
	f.setClaim("azp", nil)
	f.setClaim("aud", iosClientID)
	ids := []string{iosClientID, androidClientID}
	if webToo {
		ids = append(ids, testClientID)
	}
	p, err := New(Config{Name: "google", Kind: "google", ClientID: testClientID, ClientSecret: testClientSecret,
		Issuer: f.url(""), NativeClientIDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	return f, p
}

func TestVerifyNativeIDToken_AcceptsTheNativeClientsWithTheIssuedNonce(t *testing.T) {
	for name, claims := range map[string]map[string]any{
		"iOS client":                           {"aud": iosClientID},
		"server client named with azp Android": {"aud": testClientID, "azp": androidClientID},
		"azp equal to aud":                     {"aud": androidClientID, "azp": androidClientID},
	} {
		t.Run(name, func(t *testing.T) {
			f, p := newNativeGoogle(t, true)
			for k, v := range claims {
				f.setClaim(k, v)
			}
			res, err := p.VerifyNativeIDToken(context.Background(), f.idToken(), testNonce)
			if err != nil {
				t.Fatal(err)
			}
			if res.Profile.Subject == "" || !res.Profile.EmailVerified || res.IDToken != "" || res.Token.AccessToken != "" || res.Token.RefreshToken != "" {
				t.Errorf("result %+v: want the person and no token material", res)
			}
		})
	}
}

func TestVerifyNativeIDToken_Rejects(t *testing.T) {
	hashed := sha256.Sum256([]byte(testNonce))
	cases := []struct {
		name   string
		webToo bool
		setup  func(f *fakeProvider) (idToken, nonce string)
	}{
		{"the web client's token, web client not listed", false, func(f *fakeProvider) (string, string) {
			f.setClaim("aud", testClientID)
			return f.idToken(), testNonce
		}},
		{"the web client's token with the web flow's azp", false, func(f *fakeProvider) (string, string) {
			f.setClaim("aud", testClientID)
			f.setClaim("azp", testClientID)
			return f.idToken(), testNonce
		}},
		{"another app's token", true, func(f *fakeProvider) (string, string) {
			f.setClaim("aud", "other.apps.example")
			return f.idToken(), testNonce
		}},
		{"presented by an unlisted app", true, func(f *fakeProvider) (string, string) {
			f.setClaim("azp", "other.apps.example")
			return f.idToken(), testNonce
		}},
		{"two audiences", true, func(f *fakeProvider) (string, string) {
			f.setClaim("aud", []string{iosClientID, androidClientID})
			f.setClaim("azp", iosClientID)
			return f.idToken(), testNonce
		}},
		{"another nonce", true, func(f *fakeProvider) (string, string) { return f.idToken(), "other-nonce" }},
		{"the nonce's SHA-256 in the token (Apple's way, not Google's)", true, func(f *fakeProvider) (string, string) {
			f.nonce = hex.EncodeToString(hashed[:])
			return f.idToken(), testNonce
		}},
		{"no nonce in the token", true, func(f *fakeProvider) (string, string) {
			f.nonce = ""
			return f.idToken(), testNonce
		}},
		{"no nonce sent", true, func(f *fakeProvider) (string, string) { return f.idToken(), "" }},
		{"expired", true, func(f *fakeProvider) (string, string) {
			f.setClaim("exp", time.Now().Add(-time.Minute).Unix())
			return f.idToken(), testNonce
		}},
		{"alg none", true, func(f *fakeProvider) (string, string) {
			parts := strings.Split(f.idToken(), ".")
			return "eyJhbGciOiJub25lIn0." + parts[1] + ".", testNonce
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, p := newNativeGoogle(t, tc.webToo)
			idToken, nonce := tc.setup(f)
			if _, err := p.VerifyNativeIDToken(context.Background(), idToken, nonce); !errors.Is(err, ErrRejected) {
				t.Fatalf("err = %v, want ErrRejected", err)
			}
		})
	}
}

func TestVerifyNativeIDToken_OnlyWhereConfigured(t *testing.T) {
	f, apple, _ := newNativeApple(t)
	if _, err := apple.VerifyNativeIDToken(context.Background(), f.idToken(), "n"); !errors.Is(err, ErrAppleNeedsCode) {
		t.Errorf("apple: %v, want ErrAppleNeedsCode", err)
	}
	if _, called := f.last("/jwks"); called {
		t.Error("apple: the provider was called before refusing")
	}
	g := newFake(t, "google")
	google, err := New(Config{Name: "google", Kind: "google", ClientID: testClientID, ClientSecret: testClientSecret, Issuer: g.url("")})
	if err != nil {
		t.Fatal(err)
	}
	github, err := New(Config{Name: "github", Kind: "github", ClientID: testClientID, ClientSecret: testClientSecret})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]*Provider{"google without native_client_ids": google, "github": github} {
		if err := p.NativeIDTokens(); !errors.Is(err, ErrNativeNotConfigured) {
			t.Errorf("%s: %v, want ErrNativeNotConfigured", name, err)
		}
	}
	if err := google.NativeApple(); !errors.Is(err, ErrNativeNotConfigured) {
		t.Errorf("google as apple: %v", err)
	}
}
