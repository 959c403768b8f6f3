package testop_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/socialgate/socialgate/caddymodule/internal/testop"
)

func TestUsersByLoginHint_HintChoosesTheUserThroughRefresh(t *testing.T) {
	s := testop.Start(t, testop.Options{UsersByLoginHint: true, IssueRefreshToken: true})
	cfg := config(s, oidc.ScopeOpenID, oidc.ScopeOfflineAccess)
	verifier := provider(t, s).Verifier(&oidc.Config{ClientID: "test-client"})
	subject := func(tok *oauth2.Token) string {
		t.Helper()
		idt, err := verifier.Verify(t.Context(), tok.Extra("id_token").(string))
		if err != nil {
			t.Fatalf("id_token: %v", err)
		}
		return idt.Subject
	}
	for hint, want := range map[string]string{"soak-7": "soak-7", "": "user-1"} {
		q := authorize(t, cfg.AuthCodeURL(state, oauth2.SetAuthURLParam("login_hint", hint)))
		tok, err := cfg.Exchange(t.Context(), q.Get("code"))
		if err != nil {
			t.Fatalf("hint %q: exchange: %v", hint, err)
		}
		if got := subject(tok); got != want {
			t.Errorf("hint %q: id_token sub %q, want %q", hint, got, want)
		}
		_, body := getUserinfo(t, s, tok.AccessToken)
		var info map[string]any
		json.Unmarshal(body, &info)
		if info["sub"] != want {
			t.Errorf("hint %q: userinfo %s, want sub %q", hint, body, want)
		}
		refreshed, err := cfg.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("hint %q: refresh: %v", hint, err)
		}
		if got := subject(refreshed); got != want {
			t.Errorf("hint %q: refreshed id_token sub %q, want %q", hint, got, want)
		}
	}
}

func TestUsersByLoginHint_OffIgnoresTheHint(t *testing.T) {
	s := testop.Start(t, testop.Options{})
	cfg := config(s, oidc.ScopeOpenID)
	q := authorize(t, cfg.AuthCodeURL(state, oauth2.SetAuthURLParam("login_hint", "soak-7")))
	tok, err := cfg.Exchange(t.Context(), q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	if _, body := getUserinfo(t, s, tok.AccessToken); !json.Valid(body) || !containsSub(body, "user-1") {
		t.Errorf("userinfo %s, want the default user", body)
	}
}

func containsSub(body []byte, sub string) bool {
	var info map[string]any
	return json.Unmarshal(body, &info) == nil && info["sub"] == sub
}

// A rate of 1 makes every call fail and records each with its user.
func TestTokenFaultRate_InjectsAndRecordsTheUser(t *testing.T) {
	s := testop.Start(t, testop.Options{UsersByLoginHint: true, TokenFaultRate: 1})
	cfg := config(s, oidc.ScopeOpenID)
	code := authorize(t, cfg.AuthCodeURL(state, oauth2.SetAuthURLParam("login_hint", "soak-3"))).Get("code")
	_, err := cfg.Exchange(t.Context(), code)
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.Response.StatusCode != http.StatusInternalServerError {
		t.Fatalf("exchange error = %v, want a 500", err)
	}
	// The oauth2 client tries both ways of client authentication: one or
	// two calls, each recorded.
	got := s.Injected()
	if len(got) == 0 || len(got) != s.Calls("token") {
		t.Fatalf("Injected() = %+v for %d token calls, want every call", got, s.Calls("token"))
	}
	for _, in := range got {
		if in.Fault != testop.FaultTokenServerError || in.Grant != "authorization_code" || in.Subject != "soak-3" || in.At.IsZero() {
			t.Errorf("injection %+v, want FaultTokenServerError on soak-3's code", in)
		}
	}
	if b, _ := json.Marshal(got[0]); !json.Valid(b) || !containsField(b, "fault", "FaultTokenServerError") {
		t.Errorf("Injection encodes as %s, want the fault by name", b)
	}
}

func TestTokenFaultRate_DrawsRoughlyTheRateFromTheList(t *testing.T) {
	s := testop.Start(t, testop.Options{TokenFaultRate: 0.3, TokenFaults: []testop.Fault{testop.FaultTokenHTML, testop.FaultTokenError}})
	const calls = 400
	for range calls {
		postCode(t, s)
	}
	got := s.Injected()
	if len(got) < calls*15/100 || len(got) > calls*45/100 {
		t.Errorf("%d of %d calls injected, want about 30%%", len(got), calls)
	}
	kinds := map[testop.Fault]int{}
	for _, in := range got {
		kinds[in.Fault]++
	}
	if len(kinds) != 2 || kinds[testop.FaultTokenHTML] == 0 || kinds[testop.FaultTokenError] == 0 {
		t.Errorf("faults drawn: %v, want both listed ones and no other", kinds)
	}
}

func containsField(b []byte, key, value string) bool {
	var m map[string]any
	return json.Unmarshal(b, &m) == nil && m[key] == value
}
