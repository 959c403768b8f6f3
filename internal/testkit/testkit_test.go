package testkit

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
)

// SignInButton finds the named provider's form among several, unescaped,
// and refuses a page without it.
func TestSignInButton(t *testing.T) {
	page := `<form method="post" action="/_auth/oauth/corp/start"><input type="hidden" name="return_to" value="/a?x=1&amp;y=2">` +
		`<form method="post" action="/_auth/oauth/dev/start">`
	action, back, err := SignInButton(page, "dev")
	if err != nil || action != "/_auth/oauth/dev/start" || back != "/a?x=1&y=2" {
		t.Fatalf("SignInButton = %q, %q, %v", action, back, err)
	}
	if _, _, err := SignInButton(page, "github"); err == nil {
		t.Fatal("a page without a github button gave one")
	}
}

// The browser sees each redirect instead of following it, keeps cookies,
// and Next resolves the redirect or says which step did not redirect.
func TestBrowser_SeesEveryHopAndKeepsCookies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/a" {
			http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "s1", Path: "/"})
			http.Redirect(w, r, "/b", http.StatusFound)
			return
		}
		w.Write([]byte(r.Header.Get("Accept")))
	}))
	defer srv.Close()
	b := NewBrowser(nil)
	resp, _, err := b.Do(context.Background(), http.MethodGet, srv.URL+"/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	next, err := Next(resp)
	if err != nil || next != srv.URL+"/b" {
		t.Fatalf("Next = %q, %v; want %s/b", next, err, srv.URL)
	}
	if h, err := b.SessionHeader(srv.URL); err != nil || h != SessionCookie+"=s1" {
		t.Fatalf("SessionHeader = %q, %v", h, err)
	}
	resp, page, err := b.Do(context.Background(), http.MethodGet, next, nil)
	if err != nil || page != "text/html,application/xhtml+xml" {
		t.Fatalf("GET /b: %q, %v", page, err)
	}
	var st *StatusError
	if _, err := Next(resp); !errors.As(err, &st) || st.Status != http.StatusOK || st.Path != "/b" {
		t.Fatalf("Next of a 200 = %v", err)
	}
}

// A DSN in either form gets the schema as its search_path.
func TestWithSearchPath(t *testing.T) {
	for dsn, want := range map[string]string{
		"postgres://u@127.0.0.1:5/db?sslmode=disable": "postgres://u@127.0.0.1:5/db?search_path=t_1&sslmode=disable",
		"host=127.0.0.1 dbname=db":                    "host=127.0.0.1 dbname=db search_path=t_1",
	} {
		if got, err := withSearchPath(dsn, "t_1"); err != nil || got != want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", dsn, got, err, want)
		}
	}
}
