package provider

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestIDToken_RejectsWhatGoOIDCLeavesToUs(t *testing.T) {
	future := time.Now().Add(time.Hour).Unix()
	tests := []struct {
		name   string
		claims map[string]any
	}{
		{"sub missing", map[string]any{"sub": dropClaim}},
		{"iat missing", map[string]any{"iat": dropClaim}},
		{"iat in the future", map[string]any{"iat": future}},
		{"expired", map[string]any{"exp": time.Now().Add(-time.Hour).Unix()}},
		{"another audience", map[string]any{"aud": "someone-else", "azp": dropClaim}},
		{"extra audience without azp", map[string]any{"aud": []string{testClientID, "someone-else"}, "azp": dropClaim}},
		{"azp of another client", map[string]any{"azp": "someone-else"}},
		{"issuer differing by a slash", map[string]any{"iss": "{server}/"}},
		{"nonce of another flow", map[string]any{"nonce": "another-flow"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := newPreset(t, caseOf(t, "google"))
			for k, v := range tt.claims {
				if v == "{server}/" {
					v = f.url("/")
				}
				f.setClaim(k, v)
			}
			if _, err := signIn(p, Callback{}); !errors.Is(err, ErrRejected) {
				t.Errorf("err = %v, want ErrRejected", err)
			}
		})
	}
}

func TestIDToken_RejectsUnsignedAndSymmetricTokens(t *testing.T) {
	for _, alg := range []jose.SignatureAlgorithm{"none", jose.HS256} {
		t.Run(string(alg), func(t *testing.T) {
			f, p := newPreset(t, caseOf(t, "google"))
			f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) {
				claims := map[string]any{"iss": f.url(""), "sub": "1", "aud": testClientID, "nonce": testNonce,
					"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
				var raw string
				if alg == "none" {
					raw = "eyJhbGciOiJub25lIn0." + jwtPayload(t, claims) + "."
				} else {
					signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte(testClientSecret + testClientSecret)}, nil)
					raw, _ = jwt.Signed(signer).Claims(claims).Serialize()
				}
				f.writeJSON(w, http.StatusOK, []byte(`{"access_token":"at","token_type":"Bearer","id_token":"`+raw+`"}`))
			}
			if _, err := signIn(p, Callback{}); !errors.Is(err, ErrRejected) {
				t.Errorf("err = %v, want ErrRejected", err)
			}
		})
	}
}

// jwtPayload encodes claims as a JWT payload.
func jwtPayload(t *testing.T, claims map[string]any) string {
	t.Helper()
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: make([]byte, 32)}, nil)
	raw, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(raw, ".")[1]
}

func TestUserinfo_SubjectMustMatchTheIDToken(t *testing.T) {
	f, p := newPreset(t, caseOf(t, "gitlab"))
	f.handlers["/userinfo"] = func(w http.ResponseWriter, r *http.Request) {
		f.writeJSON(w, http.StatusOK, []byte(`{"sub":"someone-else","email":"x@example.com","email_verified":true}`))
	}
	if _, err := signIn(p, Callback{}); !errors.Is(err, ErrRejected) {
		t.Errorf("err = %v, want ErrRejected", err)
	}
}

func TestTokenResponse_FormEncodedAnswerIsRead(t *testing.T) {
	f, p := newPreset(t, caseOf(t, "github"))
	f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = w.Write([]byte("access_token=gho_form&scope=user%3Aemail%2Cread%3Aorg&token_type=bearer&expires_in=3600"))
	}
	res, err := signIn(p, Callback{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Token.AccessToken != "gho_form" || res.Token.Extra("scope") != "user:email,read:org" ||
		len(res.Scopes) != 2 || res.Scopes[1] != "read:org" || res.Token.Expiry.IsZero() {
		t.Errorf("token %+v, scopes %v", res.Token, res.Scopes)
	}
}
