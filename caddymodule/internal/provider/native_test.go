package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

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
		AuthURL: f.url("/auth/authorize"), TokenURL: f.url("/token"), JWKSURL: f.url("/jwks"),
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
	if res.Profile.Subject == "" || res.Profile.Name != "Jane Appleseed" || res.Issuer != f.url("") || res.Token.RefreshToken == "" {
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
