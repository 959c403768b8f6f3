package caddymodule_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
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
	orgs   []string    // organization logins, for /user/orgs
	teams  [][2]string // {org login, team slug}, for /user/teams
	scope  string      // the scope of the last authorization request
}

func newFakeGitHub(t *testing.T) *fakeGitHub {
	g := &fakeGitHub{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login/oauth/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		g.mu.Lock()
		g.scope = q.Get("scope")
		g.mu.Unlock()
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
	// As GitHub's REST API answers them, trimmed to a few of their fields.
	mux.HandleFunc("GET /user/orgs", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		orgs := []map[string]any{}
		for i, login := range g.orgs {
			orgs = append(orgs, map[string]any{"login": login, "id": 100 + i, "url": "https://api.github.com/orgs/" + login,
				"description": "An organization"})
		}
		json.NewEncoder(w).Encode(orgs)
	})
	mux.HandleFunc("GET /user/teams", func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		defer g.mu.Unlock()
		teams := []map[string]any{}
		for i, t := range g.teams {
			teams = append(teams, map[string]any{"id": 200 + i, "name": "Team " + t[1], "slug": t[1], "privacy": "closed",
				"permission": "pull", "organization": map[string]any{"login": t[0], "id": 100, "name": t[0] + " Inc."}})
		}
		json.NewEncoder(w).Encode(teams)
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// provider is the github provider block pointed at g, with extra lines.
func (g *fakeGitHub) provider(extra string) string {
	return fmt.Sprintf(`provider github {
			client_id Iv1.test
			client_secret test-secret
			authorize_url %[1]s/login/oauth/authorize
			token_url %[1]s/login/oauth/access_token
			userinfo_url %[1]s/user
			emails_url %[1]s/user/emails
			%[2]s
		}`, g.srv.URL, extra)
}

// setUser sets who signs in next: the GitHub user id and /user/emails.
func (g *fakeGitHub) setUser(id int, emails ...map[string]any) {
	g.mu.Lock()
	g.id, g.emails = id, emails
	g.mu.Unlock()
}

func TestGitHub_LinksOnlyByThePrimaryVerifiedEmail(t *testing.T) {
	gh := newFakeGitHub(t)
	// Both trusted to vouch for linking (not the default for a look-alike
	// GitHub at other URLs, nor for the dev provider).
	e := newEnv(t, options{Global: gh.provider("link_by_email on"), Dev: "link_by_email on"})
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

// setGroups sets the organizations and teams of whoever signs in next.
func (g *fakeGitHub) setGroups(orgs []string, teams ...[2]string) {
	g.mu.Lock()
	g.orgs, g.teams = orgs, teams
	g.mu.Unlock()
}

func TestGitHub_OrgsAndTeamsAreGroups(t *testing.T) {
	gh := newFakeGitHub(t)
	e := newEnv(t, options{Global: gh.provider("groups_from orgs teams") + "\n\t\tallow_groups github:acme/platform github:octo-org"})
	// Distinct addresses: a shared verified one would link them to one user.
	verified := func(n int) map[string]any {
		return map[string]any{"email": fmt.Sprintf("octocat%d@github.example", n), "primary": true, "verified": true}
	}

	gh.setUser(1, verified(1))
	gh.setGroups([]string{"acme", "hobby"}, [2]string{"acme", "platform"})
	b, status := signInWith(t, e, "github")
	if status != http.StatusOK {
		t.Fatalf("a member of acme/platform: status %d", status)
	}
	if !slices.Contains(strings.Fields(gh.scope), "read:org") {
		t.Errorf("authorization scope %q lacks read:org", gh.scope)
	}
	if groups := fmt.Sprint(accountsOf(b.me(e))[0]["groups"]); groups != "[acme hobby acme/platform]" {
		t.Errorf("groups = %s, want the orgs then the teams", groups)
	}

	gh.setUser(2, verified(2))
	gh.setGroups([]string{"octo-org"})
	if _, status := signInWith(t, e, "github"); status != http.StatusOK {
		t.Errorf("a member of octo-org: status %d", status)
	}

	// In acme, but not in its platform team; and a team of another org
	// with the same slug.
	gh.setUser(3, verified(3))
	gh.setGroups([]string{"acme", "evil"}, [2]string{"acme", "design"}, [2]string{"evil", "platform"})
	if _, status := signInWith(t, e, "github"); status != http.StatusForbidden {
		t.Errorf("not in acme/platform: status %d, want 403", status)
	}
}

func TestGitHub_GroupsFromIsOnlyForGitHubLists(t *testing.T) {
	e := newEnv(t, options{})
	for global, want := range map[string]string{
		"provider google {\n client_id x\n client_secret y\n groups_from orgs\n }":  "groups_from applies only to github; elsewhere map the groups with fields { groups <path> }",
		"provider github {\n client_id x\n client_secret y\n groups_from repos\n }": `groups_from: unknown list "repos" (want orgs or teams)`,
	} {
		if err := e.Load(options{Global: global}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", global, err, want)
		}
	}
}
