package provider

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const testRedirect = "https://app.example.com/_auth/oauth/test/callback"

// appleKey is the test's Sign in with Apple key, and appleKeyPEM its .p8 file.
var appleKey, appleKeyPEM = func() (*ecdsa.PrivateKey, string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}()

// oauth2URLs points an OAuth 2.0 preset at the fake.
func oauth2URLs(f *fakeProvider) Config {
	return Config{AuthURL: f.url("/authorize"), TokenURL: f.url("/token"), UserinfoURL: f.url("/userinfo"),
		EmailsURL: f.url("/emails"), RevokeURL: f.url("/revoke")}
}

// revokeWant is the revocation request the provider documents.
type revokeWant struct {
	method, path string
	auth         string // clientAuth, or "bearer"
	token        string // the token sent
	jsonKey      string // the JSON key of the token; "" for a form
}

type presetCase struct {
	kind      string
	config    func(f *fakeProvider) Config // endpoint overrides and extras
	setup     func(f *fakeProvider)
	issuer    func(f *fakeProvider) string // Result.Issuer
	scope     string                       // the authorization request's scope
	params    map[string]string            // other authorization parameters
	pkce      bool
	user      string // Apple's user form field
	profile   Profile
	granted   []string
	tokenAuth string // client authentication at the token endpoint
	// noUserinfo: the userinfo endpoint must not be called.
	noUserinfo bool
	// rotated is the refresh token a refresh returns ("" when the provider
	// does not rotate); noRefresh skips refreshing.
	rotated      string
	noRefresh    bool
	refreshError int // HTTP status of the refresh refusal; default 400
	revoke       *revokeWant
}

// serverURL is the issuer of an OAuth 2.0 preset pointed at the fake.
func serverURL(f *fakeProvider) string { return f.url("") }

func readSample(t *testing.T, preset, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "providers", preset, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var presetCases = []presetCase{{
	kind:      "google",
	config:    func(f *fakeProvider) Config { return Config{Issuer: f.url(""), RevokeURL: f.url("/revoke")} },
	issuer:    func(f *fakeProvider) string { return f.url("") },
	scope:     "openid email profile",
	params:    map[string]string{"access_type": "offline", "include_granted_scopes": "true"},
	pkce:      true,
	profile:   Profile{Subject: "110169484474386276334", Email: "jsmith@example.com", EmailVerified: true, Name: "Jane Smith", ImageURL: "https://lh3.googleusercontent.com/a/jsmith"},
	granted:   []string{"openid", "https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/userinfo.profile"},
	tokenAuth: "basic",
	revoke:    &revokeWant{method: "POST", path: "/revoke", auth: "none", token: liveRefresh},
}, {
	kind:    "github",
	config:  oauth2URLs,
	issuer:  serverURL,
	scope:   "user:email",
	pkce:    true,
	profile: Profile{Subject: "583231", Email: "octocat@github.com", EmailVerified: true, Name: "The Octocat", Username: "octocat", ImageURL: "https://avatars.githubusercontent.com/u/583231?v=4"},
	granted: []string{"user:email"}, tokenAuth: "params",
	rotated:      "ghr_Rotated2e77838347a7E420ce178F2E7c6912E169246c34E1ccbF66C46812d16D5B1A9Dc86A1498",
	refreshError: http.StatusOK, // GitHub refuses with 200 and an error field
	revoke:       &revokeWant{method: "DELETE", path: "/revoke", auth: "basic", token: "at-live", jsonKey: "access_token"},
}, {
	kind:    "microsoft",
	config:  func(f *fakeProvider) Config { return Config{Issuer: f.url("/common/v2.0")} },
	issuer:  func(f *fakeProvider) string { return f.url("/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0") },
	scope:   "openid email profile offline_access",
	pkce:    true,
	profile: Profile{Subject: "00000000-0000-0000-66f3-3332eca7ea81", Email: "AbeLi@microsoft.com", EmailVerified: true, Name: "Abe Lincoln", Username: "AbeLi@microsoft.com"},
	granted: []string{"openid", "profile", "email", "offline_access", "User.Read"}, tokenAuth: "basic",
	noUserinfo: true,
	rotated:    "0.AXEAv4j5cvGGr0GRqy180BHbR-ms-rotated",
}, {
	kind: "apple",
	config: func(f *fakeProvider) Config {
		return Config{Issuer: f.url(""), AuthURL: f.url("/auth/authorize"), TokenURL: f.url("/token"), JWKSURL: f.url("/jwks"),
			RevokeURL: f.url("/revoke"), TeamID: "TEAM123456", KeyID: "KEY1234567", PrivateKey: appleKeyPEM}
	},
	issuer:  func(f *fakeProvider) string { return f.url("") },
	scope:   "name email",
	params:  map[string]string{"response_mode": "form_post"},
	pkce:    true,
	user:    `{"name":{"firstName":"Jane","lastName":"Appleseed"},"email":"jane@example.com"}`,
	profile: Profile{Subject: "001234.5b8d1e2f3a4b5c6d7e8f9a0b1c2d3e4f.1234", Email: "jane@example.com", EmailVerified: true, Name: "Jane Appleseed"},
	granted: []string{"name", "email"}, tokenAuth: "params",
	revoke: &revokeWant{method: "POST", path: "/revoke", auth: "params", token: liveRefresh},
}, {
	kind:    "facebook",
	config:  oauth2URLs,
	issuer:  serverURL,
	scope:   "email public_profile",
	pkce:    true,
	profile: Profile{Subject: "10158340513982345", Email: "sam@example.com", Name: "Sam Sample", ImageURL: "https://platform-lookaside.fbsbx.com/platform/profilepic/?asid=10158340513982345"},
	granted: []string{"email", "public_profile"}, tokenAuth: "params",
	noRefresh: true, // Facebook has no refresh tokens
	revoke:    &revokeWant{method: "DELETE", path: "/revoke", auth: "bearer", token: "at-live"},
}, {
	kind:    "x",
	config:  oauth2URLs,
	issuer:  serverURL,
	scope:   "tweet.read users.read",
	pkce:    true,
	profile: Profile{Subject: "2244994945", Name: "Developers", Username: "XDevelopers", ImageURL: "https://pbs.twimg.com/profile_images/1683325380441128960/yRsRRjGO_normal.jpg"},
	granted: []string{"tweet.read", "users.read", "offline.access"}, tokenAuth: "basic",
	rotated: "cm90YXRlZC1yZWZyZXNoLXRva2VuLXgtcHJlc2V0OjE",
	revoke:  &revokeWant{method: "POST", path: "/revoke", auth: "basic", token: liveRefresh},
}, {
	kind:   "discord",
	config: oauth2URLs,
	issuer: serverURL,
	scope:  "identify email",
	pkce:   true,
	profile: Profile{Subject: "80351110224678912", Email: "nelly@discord.com", EmailVerified: true, Name: "Nelly", Username: "nelly",
		ImageURL: "https://cdn.discordapp.com/avatars/80351110224678912/8342729096ea3675442027381ff50dfe.png"},
	granted: []string{"identify", "email"}, tokenAuth: "basic",
	rotated: "E54g6z1bikrfx93kA5OWjFs3ZbgNLivf",
	revoke:  &revokeWant{method: "POST", path: "/revoke", auth: "basic", token: liveRefresh},
}, {
	kind:    "gitlab",
	config:  func(f *fakeProvider) Config { return Config{BaseURL: f.url("")} },
	issuer:  func(f *fakeProvider) string { return f.url("") },
	scope:   "openid email profile",
	pkce:    true,
	profile: Profile{Subject: "1234567", Email: "gitty@example.com", EmailVerified: true, Name: "Gitty McGitface", Username: "gitty", ImageURL: "https://gitlab.com/uploads/-/system/user/avatar/1234567/avatar.png"},
	granted: []string{"openid", "profile", "email"}, tokenAuth: "basic",
	rotated: "803c1fd487fec35562c205dac93e9d8e08f9d3652a24079d704df3039df1158f",
	revoke:  &revokeWant{method: "POST", path: "/oauth/revoke", auth: "basic", token: liveRefresh},
}, {
	kind:      "linkedin",
	config:    func(f *fakeProvider) Config { return Config{Issuer: f.url("/oauth")} },
	setup:     func(f *fakeProvider) { f.nonce = "" }, // LinkedIn does not echo the nonce
	issuer:    func(f *fakeProvider) string { return f.url("/oauth") },
	scope:     "openid profile email",
	profile:   Profile{Subject: "782bbtaQ", Email: "doe@email.com", EmailVerified: true, Name: "John Doe", ImageURL: "https://media.licdn-ei.com/dms/image/C5F03AQHqK8v7tB1HCQ/profile-displayphoto-shrink_100_100/0/"},
	granted:   []string{"email", "openid", "profile"},
	tokenAuth: "params",
	noRefresh: true, // refresh tokens only for approved partners
}, {
	kind:      "slack",
	config:    func(f *fakeProvider) Config { return Config{Issuer: f.url(""), RevokeURL: f.url("/revoke")} },
	issuer:    func(f *fakeProvider) string { return f.url("") },
	scope:     "openid profile email",
	pkce:      true,
	profile:   Profile{Subject: "U0R7JM", Email: "krane@slack-corp.com", EmailVerified: true, Name: "krane", ImageURL: "https://secure.gravatar.com/avatar/bc80a1a6d4a9af6fbfac40df33e11ab1.jpg?s=512"},
	granted:   []string{"openid", "profile", "email"},
	tokenAuth: "basic",
	rotated:   "xoxe-1-slack-rotated", refreshError: http.StatusOK,
	revoke: &revokeWant{method: "POST", path: "/revoke", auth: "bearer", token: "at-live"},
}, {
	kind: "notion",
	config: func(f *fakeProvider) Config {
		return Config{AuthURL: f.url("/authorize"), TokenURL: f.url("/token"), RevokeURL: f.url("/revoke")}
	},
	issuer:    serverURL,
	params:    map[string]string{"owner": "user"},
	profile:   Profile{Subject: "e79a0b74-3aba-4149-9f74-0bb5791a6ee6", Email: "ada@example.com", Name: "Ada Lovelace", ImageURL: "https://s3-us-west-2.amazonaws.com/public.notion-static.com/ada.png"},
	tokenAuth: "basic",
	rotated:   "nrt_notion-rotated",
	revoke:    &revokeWant{method: "POST", path: "/revoke", auth: "basic", token: "at-live", jsonKey: "token"},
}, {
	kind:    "bitbucket",
	config:  oauth2URLs,
	issuer:  serverURL,
	scope:   "account email",
	pkce:    true,
	profile: Profile{Subject: "{d301aafa-d676-4ee0-88be-962be7417567}", Email: "emma@example.com", EmailVerified: true, Name: "Emma Bucket", Username: "emmabucket", ImageURL: "https://secure.gravatar.com/avatar/emma.png"},
	granted: []string{"account", "email"}, tokenAuth: "basic",
	rotated: "tNhjLSU2TmdHSFNx8K",
}, {
	kind:    "twitch",
	config:  func(f *fakeProvider) Config { return Config{Issuer: f.url("/oauth2"), RevokeURL: f.url("/revoke")} },
	issuer:  func(f *fakeProvider) string { return f.url("/oauth2") },
	scope:   "openid user:read:email",
	params:  map[string]string{"claims": twitchClaims},
	pkce:    true,
	profile: Profile{Subject: "713936733", Email: "streamer@example.com", EmailVerified: true, Username: "streamer", ImageURL: "https://static-cdn.jtvnw.net/jtv_user_pictures/713936733-profile_image-300x300.png"},
	granted: []string{"openid", "user:read:email"}, tokenAuth: "params",
	rotated: "eyJfMzUtNDU0OC4MWYwLTQ5MDY5ODY4NGNlMSJ9%asdfasdf=",
	revoke:  &revokeWant{method: "POST", path: "/revoke", auth: "client_id", token: "at-live"},
}, {
	kind:    "spotify",
	config:  oauth2URLs,
	issuer:  serverURL,
	scope:   "user-read-email",
	pkce:    true,
	profile: Profile{Subject: "smedjan", Email: "sven@example.com", Name: "Sven Spotify", ImageURL: "https://i.scdn.co/image/ab6775700000ee85sven"},
	granted: []string{"user-read-email"}, tokenAuth: "basic",
}}

// newPreset starts a fake for tc and a Provider of kind tc.kind pointed at it.
func newPreset(t *testing.T, tc presetCase) (*fakeProvider, *Provider) {
	t.Helper()
	f := newFake(t, tc.kind)
	if tc.setup != nil {
		tc.setup(f)
	}
	if tc.refreshError != 0 {
		f.refreshErrorStatus = tc.refreshError
	}
	cfg := tc.config(f)
	cfg.Name, cfg.Kind, cfg.ClientID, cfg.ClientSecret = tc.kind, tc.kind, testClientID, testClientSecret
	if tc.kind == "apple" {
		cfg.ClientSecret = ""
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return f, p
}

func TestPresets_SignInRefreshRevoke(t *testing.T) {
	if got := len(presetCases) + 2; got != len(Kinds()) {
		t.Fatalf("%d kinds but %d cases: every preset needs one", len(Kinds()), got-2)
	}
	for _, tc := range presetCases {
		t.Run(tc.kind, func(t *testing.T) {
			ctx := context.Background()
			f, p := newPreset(t, tc)

			// The authorization request.
			raw, err := p.AuthCodeURL(ctx, AuthRequest{RedirectURL: testRedirect, State: "state-1", Nonce: testNonce, CodeChallenge: "challenge-1"})
			if err != nil {
				t.Fatalf("AuthCodeURL: %v", err)
			}
			u, _ := url.Parse(raw)
			q := u.Query()
			if q.Get("scope") != tc.scope || q.Get("client_id") != testClientID || q.Get("state") != "state-1" || q.Get("redirect_uri") != testRedirect {
				t.Errorf("authorization URL %s: scope %q, want %q", raw, q.Get("scope"), tc.scope)
			}
			for k, v := range tc.params {
				if q.Get(k) != v {
					t.Errorf("authorization parameter %s = %q, want %q", k, q.Get(k), v)
				}
			}
			if gotPKCE := q.Get("code_challenge") == "challenge-1" && q.Get("code_challenge_method") == "S256"; gotPKCE != tc.pkce || p.UsesPKCE() != tc.pkce {
				t.Errorf("PKCE in the URL %v, UsesPKCE %v; want %v", gotPKCE, p.UsesPKCE(), tc.pkce)
			}
			if (q.Get("nonce") == testNonce) != p.pre.oidc {
				t.Errorf("nonce %q sent for an OIDC provider: %v", q.Get("nonce"), p.pre.oidc)
			}
			if p.FormPost() != (tc.params["response_mode"] == "form_post") {
				t.Errorf("FormPost = %v", p.FormPost())
			}
			if want := strings.Fields(tc.scope); !slices.Equal(mergeScopes(p.RequiredScopes(), []string{"offline_access"}), mergeScopes(want, []string{"offline_access"})) {
				t.Errorf("RequiredScopes = %v, want %v", p.RequiredScopes(), want)
			}

			// The callback.
			res, err := p.Exchange(ctx, Callback{Code: goodCode, RedirectURL: testRedirect, Verifier: "verifier-1", Nonce: testNonce, User: tc.user})
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if !reflect.DeepEqual(res.Profile, tc.profile) {
				t.Errorf("profile\n got %+v\nwant %+v", res.Profile, tc.profile)
			}
			if res.Issuer != tc.issuer(f) {
				t.Errorf("Result.Issuer = %q, want %q", res.Issuer, tc.issuer(f))
			}
			if !slices.Equal(res.Scopes, tc.granted) {
				t.Errorf("approved scopes %q, want %q", res.Scopes, tc.granted)
			}
			if res.Token.AccessToken == "" || (p.pre.oidc && res.IDToken == "") {
				t.Errorf("token %+v, id_token %q", res.Token, res.IDToken)
			}
			tr, _ := f.last("/token")
			if got := clientAuth(tr); got != tc.tokenAuth {
				t.Errorf("token request client authentication %q, want %q", got, tc.tokenAuth)
			}
			params := tokenParams(tr)
			if (params["code_verifier"] == "verifier-1") != tc.pkce || params["redirect_uri"] != testRedirect {
				t.Errorf("token request %v: PKCE verifier want %v", params, tc.pkce)
			}
			if tc.kind == "apple" {
				checkAppleClientSecret(t, params["client_secret"])
			}
			if ct := tr.header.Get("Content-Type"); (ct == "application/json") != p.pre.tokenJSON || tr.header.Get("Accept") != "application/json" {
				t.Errorf("token request Content-Type %q, Accept %q", ct, tr.header.Get("Accept"))
			}
			if tc.noUserinfo && f.count("/userinfo") != 0 {
				t.Error("userinfo was called")
			}

			// Refresh: rotation, then a dead refresh token.
			if !tc.noRefresh {
				tok, err := p.Refresh(ctx, "", liveRefresh)
				if err != nil {
					t.Fatalf("Refresh: %v", err)
				}
				if tok.AccessToken == "" || tok.AccessToken == res.Token.AccessToken || tok.RefreshToken != tc.rotated {
					t.Errorf("refreshed token %q, rotated refresh token %q, want %q", tok.AccessToken, tok.RefreshToken, tc.rotated)
				}
				_, err = p.Refresh(ctx, "", deadRefresh)
				if !errors.Is(err, ErrInvalidGrant) || !errors.Is(err, ErrRejected) {
					t.Errorf("refresh with a dead token: %v, want ErrInvalidGrant", err)
				}
				if err != nil && strings.Contains(err.Error(), deadRefresh) {
					t.Errorf("error %q contains the refresh token", err)
				}
			}

			// Revocation.
			if p.CanRevoke() != (tc.revoke != nil) {
				t.Errorf("CanRevoke = %v", p.CanRevoke())
			}
			if err := p.Revoke(ctx, "", "at-live", liveRefresh); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if tc.revoke == nil {
				return
			}
			checkRevoke(t, f, *tc.revoke)
		})
	}
}

func TestMissingScopes_ReadsTheProvidersSpelling(t *testing.T) {
	google, err := New(Config{Name: "g", Kind: "google", ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	granted := []string{"https://www.googleapis.com/auth/userinfo.email", "https://www.googleapis.com/auth/drive.readonly"}
	if m := google.MissingScopes(granted, []string{"openid", "email", "https://www.googleapis.com/auth/drive.readonly"}); len(m) != 0 {
		t.Errorf("google: missing %v, want none", m)
	}
	if m := google.MissingScopes(granted, []string{"profile", "https://www.googleapis.com/auth/calendar"}); len(m) != 2 {
		t.Errorf("google: missing %v, want profile and calendar", m)
	}
	github, _ := New(Config{Name: "gh", Kind: "github", ClientID: "c", ClientSecret: "s"})
	if m := github.MissingScopes([]string{"user:email"}, []string{"user:email", "repo"}); len(m) != 1 || m[0] != "repo" {
		t.Errorf("github: missing %v, want repo", m)
	}
}
