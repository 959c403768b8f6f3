package provider

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestAuthCodeURL_ReauthenticateAsksOpenIDProvidersToSignInAgain(t *testing.T) {
	for _, tc := range []struct {
		kind, prompt, wantPrompt, wantMaxAge string
		reauth                               bool
	}{
		{"google", "", "login", "0", true},
		{"google", "consent", "login", "0", true},
		{"google", "consent", "consent", "", false},
		{"google", "", "", "", false},
		{"microsoft", "", "login", "0", true},
		{"github", "", "", "", true}, // plain OAuth 2.0: no such parameter
		{"discord", "consent", "consent", "", true},
	} {
		_, p := newPreset(t, caseOf(t, tc.kind))
		raw, err := p.AuthCodeURL(context.Background(), AuthRequest{RedirectURL: testRedirect, State: "s", Nonce: "n",
			Prompt: tc.prompt, Reauthenticate: tc.reauth})
		if err != nil {
			t.Fatal(err)
		}
		u, _ := url.Parse(raw)
		q := u.Query()
		if q.Get("prompt") != tc.wantPrompt || q.Get("max_age") != tc.wantMaxAge || len(q["prompt"]) > 1 {
			t.Errorf("%s (prompt %q, reauthenticate %v): prompt %q max_age %q, want %q and %q",
				tc.kind, tc.prompt, tc.reauth, q["prompt"], q.Get("max_age"), tc.wantPrompt, tc.wantMaxAge)
		}
	}
}

func TestExchange_AuthTimeIsTheIDTokensAuthTime(t *testing.T) {
	when := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		authTime any
		want     time.Time
		rejected bool
	}{
		{nil, time.Time{}, false},
		{when.Unix(), when, false},
		{float64(when.Unix()) + 0.5, when, false},
		{"1700000000", time.Time{}, true},
		{-1, time.Time{}, true},
		{1e300, time.Time{}, true},
	} {
		f, p := newPreset(t, caseOf(t, "google"))
		f.setClaim("auth_time", tc.authTime)
		res, err := signIn(p, Callback{Nonce: f.nonce})
		if tc.rejected {
			if !errors.Is(err, ErrRejected) {
				t.Errorf("auth_time %v: %v, want the ID token rejected", tc.authTime, err)
			}
			continue
		}
		if err != nil || !res.AuthTime.Equal(tc.want) {
			t.Errorf("auth_time %v: AuthTime %v (%v), want %v", tc.authTime, res.AuthTime, err, tc.want)
		}
	}
	// A plain OAuth 2.0 provider never says.
	_, p := newPreset(t, caseOf(t, "github"))
	if res, err := signIn(p, Callback{}); err != nil || !res.AuthTime.IsZero() {
		t.Errorf("github: AuthTime %v, %v; want zero", res.AuthTime, err)
	}
}
