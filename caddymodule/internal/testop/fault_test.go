package testop_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

// relyingPartyChecks are the ID token checks of OIDC Core 3.1.3.7 that
// go-oidc leaves to its caller (docs/security.md, "ID tokens").
func relyingPartyChecks(tok *oidc.IDToken, wantNonce string) error {
	var extra struct {
		Azp *string `json:"azp"`
	}
	if err := tok.Claims(&extra); err != nil {
		return err
	}
	switch {
	case tok.Nonce != wantNonce:
		return fmt.Errorf("nonce %q, want %q", tok.Nonce, wantNonce)
	case tok.IssuedAt.IsZero():
		return errors.New("no iat")
	case tok.Subject == "":
		return errors.New("no sub")
	case len(tok.Audience) > 1 && extra.Azp == nil:
		return errors.New("several audiences and no azp")
	case extra.Azp != nil && *extra.Azp != "test-client":
		return fmt.Errorf("azp %q is not our client", *extra.Azp)
	}
	return nil
}

// changed lists the header and claims members that differ between two
// tokens, as "header.alg" or "claims.aud"; iat and exp count as unchanged
// within a minute.
func changed(clean, faulty jwtParts) []string {
	var diff []string
	for _, part := range []struct {
		name string
		a, b map[string]any
	}{{"header", clean.header, faulty.header}, {"claims", clean.claims, faulty.claims}} {
		keys := slices.Sorted(maps.Keys(part.a))
		for k := range part.b {
			if _, ok := part.a[k]; !ok {
				keys = append(keys, k)
			}
		}
		for _, k := range keys {
			av, aok := part.a[k]
			bv, bok := part.b[k]
			same := aok == bok && reflect.DeepEqual(av, bv)
			if (k == "iat" || k == "exp") && aok && bok {
				same = math.Abs(av.(float64)-bv.(float64)) < 60
			}
			if k == "sid" && aok && bok {
				same = true // every authorization is a provider session of its own
			}
			if !same {
				diff = append(diff, part.name+"."+k)
			}
		}
	}
	return diff
}

func fetchJWKS(t *testing.T, p *oidc.Provider) jose.JSONWebKeySet {
	t.Helper()
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	set, _ := getJWKS(t, meta.JWKSURI)
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	return set
}

const (
	byGoOIDC       = "go-oidc Verify"
	byRelyingParty = "the relying party's own checks"
)

func TestIDTokenFaults_BreakExactlyOnePropertyAndAreRejected(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	p := provider(t, s)
	verifier := p.Verifier(&oidc.Config{ClientID: "test-client"})
	cfg := config(s, oidc.ScopeOpenID, "email", "profile")
	jwk := fetchJWKS(t, p).Keys[0]
	pub := jwk.Key.(*rsa.PublicKey)
	clean := parseJWT(t, signIn(t, cfg).idToken)

	tests := []struct {
		fault      testop.Fault
		changes    string // the only header or claims member that differs from a clean token
		rejectedBy string
		broken     func(jwt jwtParts) bool // the property, as the attack needs it
	}{
		{testop.FaultAlgNone, "header.alg", byGoOIDC, func(j jwtParts) bool {
			return j.header["alg"] == "none" && len(j.signature) == 0
		}},
		{testop.FaultHS256WithPublicKey, "header.alg", byGoOIDC, func(j jwtParts) bool {
			der, _ := x509.MarshalPKIXPublicKey(pub)
			mac := hmac.New(sha256.New, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
			mac.Write([]byte(j.signingInput))
			return j.header["alg"] == "HS256" && j.header["kid"] == jwk.KeyID && hmac.Equal(mac.Sum(nil), j.signature)
		}},
		{testop.FaultWrongAudience, "claims.aud", byGoOIDC, func(j jwtParts) bool {
			return j.claims["aud"] == "other-client"
		}},
		{testop.FaultExtraAudienceNoAzp, "claims.aud", byRelyingParty, func(j jwtParts) bool {
			_, azp := j.claims["azp"]
			return reflect.DeepEqual(j.claims["aud"], []any{"test-client", "other-client"}) && !azp
		}},
		{testop.FaultWrongAzp, "claims.azp", byRelyingParty, func(j jwtParts) bool {
			return j.claims["aud"] == "test-client" && j.claims["azp"] == "other-client"
		}},
		{testop.FaultWrongIssuer, "claims.iss", byGoOIDC, func(j jwtParts) bool {
			return j.claims["iss"] == "https://other.example"
		}},
		{testop.FaultIssuerTrailingSlash, "claims.iss", byGoOIDC, func(j jwtParts) bool {
			return j.claims["iss"] == s.URL()+"/"
		}},
		{testop.FaultIssuerCase, "claims.iss", byGoOIDC, func(j jwtParts) bool {
			iss, _ := j.claims["iss"].(string)
			return iss != s.URL() && strings.EqualFold(iss, s.URL())
		}},
		{testop.FaultWrongNonce, "claims.nonce", byRelyingParty, func(j jwtParts) bool {
			n, _ := j.claims["nonce"].(string)
			return n != "" && n != nonce
		}},
		{testop.FaultMissingNonce, "claims.nonce", byRelyingParty, func(j jwtParts) bool {
			_, ok := j.claims["nonce"]
			return !ok
		}},
		{testop.FaultMissingIat, "claims.iat", byRelyingParty, func(j jwtParts) bool {
			_, ok := j.claims["iat"]
			return !ok
		}},
		{testop.FaultMissingSub, "claims.sub", byRelyingParty, func(j jwtParts) bool {
			_, ok := j.claims["sub"]
			return !ok
		}},
		{testop.FaultExpired, "claims.exp", byGoOIDC, func(j jwtParts) bool {
			exp, _ := j.claims["exp"].(float64)
			return time.Unix(int64(exp), 0).Before(time.Now())
		}},
		{testop.FaultUnknownKid, "header.kid", byGoOIDC, func(j jwtParts) bool {
			digest := sha256.Sum256([]byte(j.signingInput))
			return j.header["alg"] == "RS256" && j.header["kid"] != jwk.KeyID &&
				rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], j.signature) != nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			s.SetFault(tt.fault)
			defer s.SetFault(testop.FaultNone)
			raw := signIn(t, cfg).idToken
			jwt := parseJWT(t, raw)

			if diff := changed(clean, jwt); !slices.Equal(diff, []string{tt.changes}) {
				t.Errorf("changed %v, want exactly [%s]", diff, tt.changes)
			}
			if !tt.broken(jwt) {
				t.Errorf("token does not show the fault: header %v, claims %v", jwt.header, jwt.claims)
			}
			idt, err := verifier.Verify(t.Context(), raw)
			switch tt.rejectedBy {
			case byGoOIDC:
				if err == nil {
					t.Errorf("go-oidc accepted the token")
				}
			case byRelyingParty:
				if err != nil {
					t.Fatalf("go-oidc rejected a token only the relying party should catch: %v", err)
				}
				if err := relyingPartyChecks(idt, nonce); err == nil {
					t.Errorf("the relying party's checks accepted the token")
				}
			}
		})
	}
}

func TestFaultUserinfoSubMismatch_DiffersFromIDToken(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	s.SetFault(testop.FaultUserinfoSubMismatch)
	got := signIn(t, config(s, oidc.ScopeOpenID))

	info, err := provider(t, s).UserInfo(t.Context(), oauth2.StaticTokenSource(got.token))
	if err != nil {
		t.Fatal(err)
	}
	if sub := parseJWT(t, got.idToken).claims["sub"]; sub != "user-1" || info.Subject != "other-user-1" {
		t.Errorf("id_token sub %v, userinfo sub %q; want user-1 and other-user-1", sub, info.Subject)
	}
}

func TestFaultWrongIssParam_SendsOtherIssuerInBothModes(t *testing.T) {
	for _, mode := range []testop.Mode{testop.OIDC, testop.OAuth2} {
		s := testop.Start(t, testop.Options{Mode: mode})
		s.SetFault(testop.FaultWrongIssParam)
		q := authorize(t, config(s).AuthCodeURL(state))
		if q.Get("iss") != "https://other.example" || q.Get("code") == "" {
			t.Errorf("mode %d: authorization response = %v, want a code and iss=https://other.example", mode, q)
		}
	}
}

// postCode redeems a fresh code by hand, to see the raw response.
func postCode(t *testing.T, s *testop.Server) (*http.Response, []byte) {
	t.Helper()
	code := authorize(t, config(s, oidc.ScopeOpenID).AuthCodeURL(state)).Get("code")
	resp, err := http.PostForm(s.TokenURL(), url.Values{
		"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI},
		"client_id": {"test-client"}, "client_secret": {"test-secret"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}

func TestTokenFaults_AnswerGarbage(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	cfg := config(s, oidc.ScopeOpenID)

	t.Run("FaultTokenError keeps the code", func(t *testing.T) {
		code := authorize(t, cfg.AuthCodeURL(state)).Get("code")
		s.SetFault(testop.FaultTokenError)
		_, err := cfg.Exchange(t.Context(), code)
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) || re.Response.StatusCode != http.StatusBadRequest || re.ErrorCode != "invalid_grant" {
			t.Errorf("exchange error = %v, want 400 invalid_grant", err)
		}
		s.SetFault(testop.FaultNone)
		if _, err := cfg.Exchange(t.Context(), code); err != nil {
			t.Errorf("code unusable after the fault was lifted: %v", err)
		}
	})
	t.Run("FaultTokenHTML", func(t *testing.T) {
		s.SetFault(testop.FaultTokenHTML)
		defer s.SetFault(testop.FaultNone)
		resp, body := postCode(t, s)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") ||
			!strings.HasPrefix(string(body), "<!DOCTYPE html>") {
			t.Errorf("response = %d %s %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("FaultTokenHuge", func(t *testing.T) {
		s.SetFault(testop.FaultTokenHuge)
		defer s.SetFault(testop.FaultNone)
		resp, body := postCode(t, s)
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		if err := json.Unmarshal(body, &tok); resp.StatusCode != http.StatusOK || err != nil || len(tok.AccessToken) < 10<<20 {
			t.Errorf("response = %d, %d bytes, JSON error %v; want 200 and a 10 MiB access_token", resp.StatusCode, len(body), err)
		}
	})
}

func TestFaultSlow_DelaysTokenAndUserinfo(t *testing.T) {
	t.Parallel()
	s := testop.Start(t, testop.Options{})
	cfg := config(s, oidc.ScopeOpenID)
	tok := signIn(t, cfg).token
	code := authorize(t, cfg.AuthCodeURL(state)).Get("code")
	s.SetFault(testop.FaultSlow)

	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := cfg.Exchange(ctx, code); err == nil {
		t.Errorf("impatient exchange succeeded")
	}
	if _, err := provider(t, s).UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Errorf("impatient userinfo succeeded")
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("timeouts took %v", elapsed)
	}

	start = time.Now()
	status, _ := getUserinfo(t, s, tok.AccessToken)
	if elapsed := time.Since(start); status != http.StatusOK || elapsed < 3*time.Second {
		t.Errorf("patient userinfo = %d after %v, want 200 after 3s", status, elapsed)
	}
}

// refresh sends a refresh_token grant with ctx.
func refresh(ctx context.Context, cfg *oauth2.Config, rt string) (*oauth2.Token, error) {
	return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: rt}).Token()
}

func TestTokenFaults_FailOrHangWithoutConsumingTheRefreshToken(t *testing.T) {
	t.Parallel()
	s := testop.Start(t, testop.Options{IssueRefreshToken: true})
	cfg := config(s, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	rt := signIn(t, cfg).token.RefreshToken

	s.SetFault(testop.FaultTokenServerError)
	_, err := refresh(t.Context(), cfg, rt)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusInternalServerError {
		t.Errorf("FaultTokenServerError: %v, want HTTP 500", err)
	}

	s.SetFault(testop.FaultTokenHang)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := refresh(ctx, cfg, rt); err == nil || time.Since(start) < 300*time.Millisecond {
		t.Errorf("FaultTokenHang answered after %v: %v", time.Since(start), err)
	}

	s.SetFault(testop.FaultNone)
	if _, err := refresh(t.Context(), cfg, rt); err != nil {
		t.Errorf("the refresh token was consumed by a failed or hung request: %v", err)
	}
}

func TestTokenFaults_LostAnswerRotatesAndOnlyTheGraceSavesTheGrant(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		grace time.Duration
		want  bool // the old refresh token works again after the lost answer
	}{
		{0, false},
		{time.Minute, true},
	} {
		s := testop.Start(t, testop.Options{IssueRefreshToken: true, RefreshReuseGrace: tt.grace})
		cfg := config(s, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
		rt := signIn(t, cfg).token.RefreshToken
		s.SetFault(testop.FaultTokenLostAnswer)
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		if _, err := refresh(ctx, cfg, rt); err == nil {
			t.Errorf("grace %v: the lost answer arrived", tt.grace)
		}
		cancel()
		s.SetFault(testop.FaultNone)
		tok, err := refresh(t.Context(), cfg, rt)
		if (err == nil) != tt.want {
			t.Fatalf("grace %v: reusing the rotated refresh token: %v, want success %v", tt.grace, err, tt.want)
		}
		if err == nil {
			// The grace covers the previous token only until its own end.
			if _, err := refresh(t.Context(), cfg, tok.RefreshToken); err != nil {
				t.Errorf("grace %v: the token issued within the grace: %v", tt.grace, err)
			}
		}
	}
}

func TestRefreshReuseGrace_Ends(t *testing.T) {
	t.Parallel()
	s := testop.Start(t, testop.Options{IssueRefreshToken: true, RefreshReuseGrace: 200 * time.Millisecond})
	cfg := config(s, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	rt := signIn(t, cfg).token.RefreshToken
	if _, err := refresh(t.Context(), cfg, rt); err != nil {
		t.Fatal(err)
	}
	if _, err := refresh(t.Context(), cfg, rt); err != nil {
		t.Errorf("within the grace: %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	_, err := refresh(t.Context(), cfg, rt)
	wantOAuthError(t, err, "invalid_grant")
}

func TestFaultTokenHang_EndsWhenTheFaultChanges(t *testing.T) {
	t.Parallel()
	s := testop.Start(t, testop.Options{IssueRefreshToken: true})
	cfg := config(s, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	rt := signIn(t, cfg).token.RefreshToken
	s.SetFault(testop.FaultTokenHang)
	calls := s.Calls("token")
	done := make(chan error, 1)
	go func() {
		_, err := refresh(t.Context(), cfg, rt)
		done <- err
	}()
	for s.Calls("token") == calls {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // counted, then hung: let it reach the hang
	s.SetFault(testop.FaultNone)
	select {
	case err := <-done:
		if err == nil {
			t.Error("a hung request got an answer when the fault was lifted")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the hung request outlived the fault")
	}
	if _, err := refresh(t.Context(), cfg, rt); err != nil {
		t.Errorf("the hung request consumed the refresh token: %v", err)
	}
}
