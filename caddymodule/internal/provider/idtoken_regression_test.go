package provider

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Found by FuzzIDToken: an iat beyond int64 seconds is far in the future,
// but flexInt64 (claims.go) converts the float to int64, which overflows to
// a date in the past, so checkIDClaims' "iat is in the future" test
// (exchange.go) passes and the token is accepted.
func TestIDToken_RejectsIatBeyondInt64(t *testing.T) {
	op := newFzOP(t)
	p := fzProvider(t, op, "static", KindOIDC, Config{AuthURL: op.url("/authorize"), TokenURL: op.url("/token"), JWKSURL: op.url("/jwks")})
	for _, iat := range []any{1e300, 9.3e18, json.Number("92233720368547758080")} {
		body, _ := json.Marshal(map[string]any{"access_token": "at", "token_type": "Bearer",
			"id_token": fzIDToken(op.url(""), map[string]any{"iat": iat})})
		op.set("/token", fzAnswer{200, "application/json", body})
		if _, err := p.Exchange(context.Background(), fzCallback()); !errors.Is(err, ErrRejected) {
			t.Errorf("iat %v (in the future): err = %v, want ErrRejected", iat, err)
		}
	}
}

// docs/security.md, "ID tokens": an unknown kid triggers at most one
// rate-limited JWKS fetch. go-oidc's key set fetches the JWKS again for
// every token whose kid it does not know (only concurrent fetches are
// shared), and nothing in front of it limits that. The native Sign in with Apple endpoint takes the identity
// token from the client, so anyone can make the gateway call Apple's JWKS
// once per request.
func TestIDToken_UnknownKidRefetchesTheJWKSAtMostOnce(t *testing.T) {
	t.Run("native identity tokens from the client", func(t *testing.T) {
		f, p, raw := newNativeApple(t)
		ctx := context.Background()
		if _, err := p.ExchangeNative(ctx, NativeApple{IDToken: f.idToken(), Code: goodCode, RawNonce: raw}); err != nil {
			t.Fatal(err)
		}
		before := f.count("/jwks")
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: fzKeys()[1]},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "attacker-kid"))
		for i := 0; i < 20; i++ {
			forged, _ := jwt.Signed(signer).Claims(map[string]any{"iss": f.url(""), "sub": "victim", "aud": bundleID,
				"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}).Serialize()
			if _, err := p.ExchangeNative(ctx, NativeApple{IDToken: forged, Code: "x", RawNonce: raw}); !errors.Is(err, ErrRejected) {
				t.Fatalf("forged identity token: %v", err)
			}
		}
		if n := f.count("/jwks") - before; n > 1 {
			t.Errorf("20 identity tokens with an unknown kid made %d JWKS requests, want at most 1", n)
		}
	})
	t.Run("ID tokens from the token endpoint", func(t *testing.T) {
		op := newFzOP(t)
		p := fzProvider(t, op, "static", KindOIDC, Config{AuthURL: op.url("/authorize"), TokenURL: op.url("/token"), JWKSURL: op.url("/jwks")})
		body, _ := json.Marshal(map[string]any{"access_token": "at", "id_token": fzIDToken(op.url(""), nil)})
		op.set("/token", fzAnswer{200, "application/json", body})
		if _, err := p.Exchange(context.Background(), fzCallback()); err != nil {
			t.Fatal(err)
		}
		before := op.count("/jwks")
		now := time.Now().Unix()
		for i := 0; i < 10; i++ {
			payload, _ := json.Marshal(map[string]any{"iss": op.url(""), "sub": "x", "aud": fzClientID, "nonce": fzNonce, "iat": now, "exp": now + 60})
			body, _ := json.Marshal(map[string]any{"access_token": "at",
				"id_token": fzSign(map[string]any{"alg": "RS256", "kid": "rotated-1"}, payload, "RS256", fzKeys()[1])})
			op.set("/token", fzAnswer{200, "application/json", body})
			if _, err := p.Exchange(context.Background(), fzCallback()); !errors.Is(err, ErrRejected) {
				t.Fatalf("unknown kid: %v", err)
			}
		}
		if n := op.count("/jwks") - before; n > 1 {
			t.Errorf("10 ID tokens with an unknown kid made %d JWKS requests, want at most 1", n)
		}
	})
}
