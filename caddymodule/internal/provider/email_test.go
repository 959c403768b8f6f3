package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
)

// presetCase returns the case of kind.
func caseOf(t *testing.T, kind string) presetCase {
	t.Helper()
	for _, tc := range presetCases {
		if tc.kind == kind {
			return tc
		}
	}
	t.Fatalf("no case for %s", kind)
	return presetCase{}
}

// signIn runs one callback against a preset's fake.
func signIn(p *Provider, cb Callback) (*Result, error) {
	if cb.Code == "" {
		cb.Code = goodCode
	}
	cb.RedirectURL, cb.Verifier = testRedirect, "verifier-1"
	if cb.Nonce == "" {
		cb.Nonce = testNonce
	}
	return p.Exchange(context.Background(), cb)
}

func TestPrimaryEmail_OnlyThePrimaryCounts(t *testing.T) {
	github := presets["github"].emails
	bitbucket := presets["bitbucket"].emails
	tests := []struct {
		name, doc, profileEmail string
		list                    emailList
		wantEmail               string
		wantVerified            bool
	}{
		{"github primary verified", `[{"email":"a@x.io","primary":true,"verified":true},{"email":"b@x.io","primary":false,"verified":true}]`, "", github, "a@x.io", true},
		{"github primary unverified", `[{"email":"a@x.io","primary":true,"verified":false}]`, "", github, "a@x.io", false},
		{"github only a secondary verified", `[{"email":"a@x.io","primary":true,"verified":false},{"email":"b@x.io","primary":false,"verified":true}]`, "", github, "a@x.io", false},
		{"github public email replaced by the primary", `[{"email":"a@x.io","primary":true,"verified":true},{"email":"pub@x.io","primary":false,"verified":true}]`, "pub@x.io", github, "a@x.io", true},
		{"github no primary keeps the profile email, unverified", `[{"email":"b@x.io","primary":false,"verified":true}]`, "pub@x.io", github, "pub@x.io", false},
		{"github verified as a string", `[{"email":"a@x.io","primary":true,"verified":"true"}]`, "", github, "a@x.io", true},
		{"github not a list", `{"message":"Not Found"}`, "", github, "", false},
		{"bitbucket primary confirmed", `{"values":[{"email":"a@x.io","is_primary":true,"is_confirmed":true}]}`, "", bitbucket, "a@x.io", true},
		{"bitbucket primary unconfirmed", `{"values":[{"email":"a@x.io","is_primary":true,"is_confirmed":false},{"email":"b@x.io","is_primary":false,"is_confirmed":true}]}`, "", bitbucket, "a@x.io", false},
		{"bitbucket empty page", `{"pagelen":10,"values":[],"page":1,"size":0}`, "", bitbucket, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var doc any
			if err := json.Unmarshal([]byte(tt.doc), &doc); err != nil {
				t.Fatal(err)
			}
			email, verified := primaryEmail(doc, tt.list, tt.profileEmail)
			if email != tt.wantEmail || verified != tt.wantVerified {
				t.Errorf("got (%q, %v), want (%q, %v)", email, verified, tt.wantEmail, tt.wantVerified)
			}
		})
	}
}

func TestGitHub_UnverifiedPrimaryIsNotVerified(t *testing.T) {
	f, p := newPreset(t, caseOf(t, "github"))
	f.handlers["/emails"] = func(w http.ResponseWriter, r *http.Request) {
		f.writeJSON(w, http.StatusOK, []byte(`[{"email":"octocat@github.com","primary":true,"verified":false,"visibility":"private"},
			{"email":"other@example.com","primary":false,"verified":true,"visibility":null}]`))
	}
	res, err := signIn(p, Callback{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile.Email != "octocat@github.com" || res.Profile.EmailVerified {
		t.Errorf("profile %+v, want the unverified primary", res.Profile)
	}
}

func TestMicrosoft_EmailTrustAndTenantIssuer(t *testing.T) {
	const (
		tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		other  = "11111111-2222-3333-4444-555555555555"
	)
	tests := []struct {
		name         string
		claims       map[string]any // "-" removes a claim
		iss          string         // the token's tenant in iss; default tenant
		callbackIss  string         // a callback iss parameter (path after the server URL)
		wantVerified bool
		wantSubject  string
		wantIssuer   string // tenant of Result.Issuer
		wantErr      error
		noTokenCall  bool
	}{
		{name: "xms_edov true", wantVerified: true},
		{name: "xms_edov false", claims: map[string]any{"xms_edov": false}},
		{name: "xms_edov absent", claims: map[string]any{"xms_edov": "-"}},
		{name: "xms_edov as a string", claims: map[string]any{"xms_edov": "true"}, wantVerified: true},
		{name: "personal account", claims: map[string]any{"xms_edov": "-", "tid": msPersonalTenant},
			iss: msPersonalTenant, wantVerified: true, wantIssuer: msPersonalTenant},
		{name: "no oid: the subject is sub", claims: map[string]any{"oid": "-"}, wantVerified: true,
			wantSubject: "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"},
		{name: "iss of another tenant than tid", iss: other, wantErr: ErrRejected},
		{name: "tid missing", claims: map[string]any{"tid": "-"}, wantErr: ErrRejected},
		{name: "tid not a tenant id", claims: map[string]any{"tid": "common"}, iss: "common", wantErr: ErrRejected},
		{name: "callback iss of the token's tenant", callbackIss: "/" + tenant + "/v2.0", wantVerified: true},
		{name: "callback iss of another tenant", callbackIss: "/" + other + "/v2.0", wantErr: ErrRejected},
		{name: "callback iss not a tenant issuer", callbackIss: "/evil/v2.0", wantErr: ErrRejected, noTokenCall: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := newPreset(t, caseOf(t, "microsoft"))
			for k, v := range tt.claims {
				if v == "-" {
					v = nil
				}
				f.setClaim(k, v)
			}
			iss := tt.iss
			if iss == "" {
				iss = tenant
			}
			f.setClaim("iss", f.url("/"+iss+"/v2.0"))
			cb := Callback{}
			if tt.callbackIss != "" {
				cb.Iss, cb.HasIss = f.url(tt.callbackIss), true
			}
			res, err := signIn(p, cb)
			if tt.noTokenCall && f.count("/token") != 0 {
				t.Error("the code went to the token endpoint")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantSubject, wantIssuer := tt.wantSubject, tt.wantIssuer
			if wantSubject == "" {
				wantSubject = "00000000-0000-0000-66f3-3332eca7ea81"
			}
			if wantIssuer == "" {
				wantIssuer = tenant
			}
			if res.Profile.EmailVerified != tt.wantVerified || res.Profile.Subject != wantSubject || res.Issuer != f.url("/"+wantIssuer+"/v2.0") {
				t.Errorf("verified %v subject %q issuer %q; want %v %q %q", res.Profile.EmailVerified, res.Profile.Subject, res.Issuer,
					tt.wantVerified, wantSubject, wantIssuer)
			}
		})
	}
}

func TestApple_RelayAndPrivateEmailsAreNeverVerified(t *testing.T) {
	tests := []struct {
		name         string
		claims       map[string]any
		wantVerified bool
	}{
		{"email_verified as the string true", map[string]any{"email_verified": "true"}, true},
		{"email_verified as a boolean", map[string]any{"email_verified": true}, true},
		{"email_verified false", map[string]any{"email_verified": "false"}, false},
		{"relay address", map[string]any{"email": "x7k2p9q4m1@privaterelay.appleid.com", "is_private_email": "true"}, false},
		{"relay address without is_private_email", map[string]any{"email": "X7K2P9Q4M1@PrivateRelay.AppleID.com", "is_private_email": nil}, false},
		{"is_private_email as the string true", map[string]any{"is_private_email": "true"}, false},
		{"is_private_email as a boolean", map[string]any{"is_private_email": true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := newPreset(t, caseOf(t, "apple"))
			for k, v := range tt.claims {
				f.setClaim(k, v)
			}
			res, err := signIn(p, Callback{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Profile.EmailVerified != tt.wantVerified {
				t.Errorf("EmailVerified = %v for %q", res.Profile.EmailVerified, res.Profile.Email)
			}
		})
	}
}

func TestApple_NameOnlyFromTheFirstAuthorization(t *testing.T) {
	f, p := newPreset(t, caseOf(t, "apple"))
	user := readSample(t, "apple", "user.json")
	first, err := signIn(p, Callback{User: user})
	if err != nil {
		t.Fatal(err)
	}
	if first.Profile.Name != "Jane Appleseed" {
		t.Errorf("first authorization name %q", first.Profile.Name)
	}
	second, err := signIn(p, Callback{})
	if err != nil {
		t.Fatal(err)
	}
	if second.Profile.Name != "" {
		t.Errorf("second authorization name %q, want none", second.Profile.Name)
	}
	// The user field's email is not the ID token's: the ID token wins.
	f.setClaim("email", "real@example.com")
	res, err := signIn(p, Callback{User: `{"name":{"firstName":"Eve\u0007","lastName":"X"},"email":"victim@example.com"}`})
	if err != nil {
		t.Fatal(err)
	}
	if res.Profile.Email != "real@example.com" || res.Profile.Name != "Eve X" {
		t.Errorf("profile %+v: the email must be the ID token's, the name without control characters", res.Profile)
	}
	for _, bad := range []string{"not json", `{"name":"flat"}`, `{"name":{"firstName":` + string(make([]byte, maxUserField)) + `}}`} {
		if res, err := signIn(p, Callback{User: bad}); err != nil || res.Profile.Name != "" {
			t.Errorf("user field %.20q: name %q, err %v", bad, res.Profile.Name, err)
		}
	}
}

func TestClaimRule_EmailVerifiedFollowsTheIDToken(t *testing.T) {
	for _, kind := range []string{"google", "gitlab", "slack", "linkedin", "twitch"} {
		for _, verified := range []any{true, false, "true", "false", nil} {
			tc := caseOf(t, kind)
			f, p := newPreset(t, tc)
			f.setClaim("email_verified", verified)
			res, err := signIn(p, Callback{Nonce: f.nonce})
			if err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
			want := verified == true || verified == "true"
			if res.Profile.EmailVerified != want {
				t.Errorf("%s with email_verified %v: EmailVerified = %v", kind, verified, res.Profile.EmailVerified)
			}
		}
	}
}

func TestNonce_CheckedUnlessTheProviderNeverSendsIt(t *testing.T) {
	// LinkedIn never echoes the nonce: absent is accepted, a wrong one is not.
	f, p := newPreset(t, caseOf(t, "linkedin"))
	f.nonce = "someone-elses"
	if _, err := signIn(p, Callback{}); !errors.Is(err, ErrRejected) {
		t.Errorf("linkedin with a wrong nonce: %v", err)
	}
	// Everyone else must echo it.
	f, p = newPreset(t, caseOf(t, "google"))
	f.nonce = ""
	if _, err := signIn(p, Callback{}); !errors.Is(err, ErrRejected) {
		t.Errorf("google without a nonce: %v", err)
	}
}
