package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
)

// fakeGitHub answers like GitHub's OAuth app endpoints and REST API: no ID
// token; the email comes from /user/emails.
type fakeGitHub struct {
	srv    *httptest.Server
	mu     sync.Mutex
	id     int
	emails []map[string]any
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	g := &fakeGitHub{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		back, _ := url.Parse(q.Get("redirect_uri"))
		back.RawQuery = url.Values{"code": {"gh-code"}, "state": {q.Get("state")}}.Encode()
		http.Redirect(w, r, back.String(), http.StatusFound)
	})
	mux.HandleFunc("POST /login/oauth/access_token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"gho_16C7e42F292c6912E7710c838347Ae178B4a","scope":"repo,user:email","token_type":"bearer"}`)
	})
	mux.HandleFunc("GET /user", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		fmt.Fprintf(w, `{"login":"octocat","id":%d,"avatar_url":"https://avatars.githubusercontent.com/u/583231?v=4","name":"The Octocat","email":null}`, g.id)
	})
	mux.HandleFunc("GET /user/emails", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		json.NewEncoder(w).Encode(g.emails)
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// setUser sets who signs in next: the GitHub user id and /user/emails.
func (g *fakeGitHub) setUser(id int, emails ...map[string]any) {
	g.mu.Lock()
	g.id, g.emails = id, emails
	g.mu.Unlock()
}

func TestGitHub_LinksOnlyByThePrimaryVerifiedEmail(t *testing.T) {
	gh := newFakeGitHub(t)
	e := newEnv(t, options{Global: fmt.Sprintf(`provider github {
			client_id Iv1.test
			client_secret test-secret
			authorize_url %[1]s/login/oauth/authorize
			token_url %[1]s/login/oauth/access_token
			userinfo_url %[1]s/user
			emails_url %[1]s/user/emails
		}`, gh.srv.URL)})
	dev := newBrowser(t)
	dev.signInDev(e, "/", ada)
	adaID := dev.me(e)["id"]

	cases := []struct {
		name   string
		emails []map[string]any
		links  bool
	}{
		{"primary but unverified", []map[string]any{{"email": "ada@example.com", "primary": true, "verified": false}}, false},
		{"verified but secondary", []map[string]any{
			{"email": "ada@example.com", "primary": false, "verified": true},
			{"email": "someone@github.example", "primary": true, "verified": true}}, false},
		{"primary and verified", []map[string]any{{"email": "ADA@example.com", "primary": true, "verified": true}}, true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gh.setUser(1000+i, tc.emails...) // a new GitHub identity each time
			b := newBrowser(t)
			resp, body := b.follow(b.get(location(t, b.startSignIn(e, "/", "github"))))
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("github sign-in: %d %s", resp.StatusCode, body)
			}
			me := b.me(e)
			if linked := me["id"] == adaID; linked != tc.links {
				t.Fatalf("linked to Ada: %v, want %v", linked, tc.links)
			}
			gh := accountsOf(me)[len(accountsOf(me))-1]
			if gh["provider"] != "oauth_github" || gh["username"] != "octocat" || gh["provider_user_id"] != fmt.Sprint(1000+i) {
				t.Errorf("github account = %v", gh)
			}
		})
	}
}
