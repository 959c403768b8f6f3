package caddymodule_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Found by the second red team: the endpoints a provider's discovery
// document names were used unchecked. Provider endpoints must be https,
// plain http only for hosts that cannot be on the internet; that held for
// the endpoints written in the Caddyfile, not for a discovered
// token_endpoint, userinfo_endpoint, jwks_uri or revocation_endpoint. An
// issuer whose document says "token_endpoint": "http://idp.example.com/token"
// (a hostile provider, or an IdP behind a TLS-terminating proxy that prints
// http:// URLs) got the authorization code, the PKCE verifier and the client
// secret in clear text over the internet.
//
// internetSeen records what the gateway sends to non-local hosts: an HTTP
// proxy set before any request of the test process stands for the
// internet (net/http never proxies loopback requests, so other tests are
// unaffected).
var internetSeen struct {
	sync.Mutex
	requests []string
}

// attackerKey signs what a network attacker serves as a provider's keys.
var attackerKey, _ = rsa.GenerateKey(rand.Reader, 2048)

func init() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return
	}
	os.Setenv("HTTP_PROXY", "http://"+ln.Addr().String())
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		internetSeen.Lock()
		internetSeen.requests = append(internetSeen.requests, r.Method+" "+r.URL.String()+" "+r.Header.Get("Authorization")+" "+string(body))
		internetSeen.Unlock()
		if r.URL.Host == "keys.example.com" { // a network attacker answers for the key host
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &attackerKey.PublicKey, KeyID: "attacker", Algorithm: "RS256", Use: "sig"}}})
			return
		}
		http.Error(w, "the internet is not here", http.StatusBadGateway)
	}))
}

// sentToTheInternet fails the test for each request the gateway sent to host
// through the proxy that stands for the internet.
func sentToTheInternet(t *testing.T, host string) {
	t.Helper()
	internetSeen.Lock()
	defer internetSeen.Unlock()
	for _, req := range internetSeen.requests {
		if strings.Contains(req, host) {
			t.Errorf("the gateway sent, in clear text to a host on the internet: %.60s…", req)
		}
	}
}

// hostileDiscovery serves a discovery document for its own URL as issuer,
// with edit applied, and approves every authorization at once.
func hostileDiscovery(t *testing.T, edit func(doc map[string]any)) *httptest.Server {
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			doc := map[string]any{
				"issuer": front.URL, "authorization_endpoint": front.URL + "/authorize",
				"token_endpoint": front.URL + "/token", "jwks_uri": front.URL + "/jwks",
				"response_types_supported": []string{"code"}, "subject_types_supported": []string{"public"},
				"id_token_signing_alg_values_supported":          []string{"RS256"},
				"authorization_response_iss_parameter_supported": true,
			}
			edit(doc)
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(doc)
		case "/authorize":
			q := r.URL.Query()
			back, _ := url.Parse(q.Get("redirect_uri"))
			back.RawQuery = url.Values{"code": {"the-authorization-code"}, "state": {q.Get("state")}, "iss": {front.URL}}.Encode()
			http.Redirect(w, r, back.String(), http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(front.Close)
	return front
}

// corpProvider is the Caddyfile block of provider corp at issuer.
func corpProvider(issuer, extra string) string {
	return fmt.Sprintf("provider oidc corp {\n\t\t\tissuer %s\n\t\t\tclient_id test-client\n\t\t\tclient_secret %s\n\t\t\t%s\n\t\t}", issuer, corpSecret, extra)
}

const corpSecret = "test-secret-0123456789"

func TestDiscovery_APlainHTTPTokenEndpointNeverGetsTheClientSecret(t *testing.T) {
	recordSecret(corpSecret)
	front := hostileDiscovery(t, func(doc map[string]any) {
		doc["token_endpoint"] = "http://idp.example.com/token" // plain http, on the internet
		doc["userinfo_endpoint"] = "http://idp.example.com/userinfo"
	})
	e := newEnv(t, options{Global: corpProvider(front.URL, "")})
	b := newBrowser(t)
	resp, body := b.post(e.Base+"/_auth/oauth/corp/start", url.Values{"return_to": {"/"}})
	if resp.StatusCode == http.StatusSeeOther {
		resp, _ = b.get(location(t, resp)) // the provider approves
		resp, body = b.get(location(t, resp))
	}
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "not reachable") {
		t.Errorf("a provider whose discovery names an http token endpoint: status %d, want 502 and a page saying it is not reachable", resp.StatusCode)
	}
	sentToTheInternet(t, "idp.example.com")
	// The operator reads why in the log.
	log, _ := os.ReadFile(filepath.Join(e.Storage, "debug.log"))
	if !strings.Contains(string(log), `token_endpoint \"http://idp.example.com/token\" must use https`) {
		t.Errorf("the log does not say that the discovered token_endpoint must use https")
	}
}

// The same with "jwks_uri": "http://keys.example.com/jwks": whoever is on the
// network path to that host (here the proxy standing for the internet)
// serves their own key, and a native sign-in (POST /_auth/native/id_token,
// where the client supplies the ID token) with a token they signed bought a
// session as any subject of the provider: account takeover.
func TestDiscovery_APlainHTTPJWKSSignsNoOneIn(t *testing.T) {
	front := hostileDiscovery(t, func(doc map[string]any) {
		doc["jwks_uri"] = "http://keys.example.com/jwks" // plain http, on the internet
	})
	e := newEnv(t, options{Global: corpProvider(front.URL, "native_client_ids test-client")})
	// The attacker asks the gateway for a nonce, like any app…
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	status, out := postJSON(t, e.Base+"/_auth/native/nonce", map[string]string{"code_challenge": base64.RawURLEncoding.EncodeToString(sum[:])})
	if status != http.StatusOK {
		t.Fatalf("nonce: %d %v", status, out)
	}
	nonce := out["nonce"].(string)
	// …and signs an ID token for the victim's subject with their own key.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: attackerKey}, (&jose.SignerOptions{}).WithHeader("kid", "attacker").WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	claims, _ := json.Marshal(map[string]any{"iss": front.URL, "aud": "test-client", "sub": "the-victims-subject", "nonce": nonce,
		"iat": now, "exp": now + 600, "email": "ceo@corp.example", "email_verified": true, "name": "The CEO"})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := jws.CompactSerialize()
	status, out = postJSON(t, e.Base+"/_auth/native/id_token", map[string]string{"provider": "corp", "id_token": forged, "nonce": nonce, "code_verifier": verifier})
	if status == http.StatusOK {
		t.Errorf("an ID token signed with a key served over plain http from the internet signed in subject %q: session_token issued, user %v",
			"the-victims-subject", out["user"].(map[string]any)["id"])
	} else if status != http.StatusBadGateway || out["errors"] == nil {
		t.Errorf("refused with %d %v, want 502 provider_unavailable", status, out)
	}
	sentToTheInternet(t, "keys.example.com")
}
