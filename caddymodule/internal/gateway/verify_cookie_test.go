package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// newCookieGW is newVerifyGW's gateway (cookie domain example.com, trusted
// proxy 10.0.0.1) with the policies "admins" (which refuses ada) and
// "open" (public: anonymous requests pass).
func newCookieGW(t *testing.T) *testGW {
	return newTestGW(t, func(cfg *Config) {
		cfg.CookieDomain = "example.com"
		cfg.ForwardAuth = &ForwardAuth{
			URL: "https://auth.example.com",
			Policies: map[string]Route{
				"admins": {AllowGroups: []string{"corp:admins"}},
				"open":   {Public: true},
			},
			Trusted: func(r *http.Request) bool { return strings.HasPrefix(r.RemoteAddr, "10.0.0.1:") },
		}
	})
}

// askWithCookies asks verify (nginx's and Traefik's forms) with the
// given Cookie lines, and returns each answer's status and Cookie lines.
func (tg *testGW) askWithCookies(t *testing.T, path string, lines ...string) map[string]*http.Response {
	t.Helper()
	out := map[string]*http.Response{}
	for name, h := range map[string]http.Header{
		"nginx":   nginxAsks("https://app1.example.com/a", ""),
		"traefik": traefikAsks("app1.example.com", "/a", ""),
	} {
		if lines != nil {
			h["Cookie"] = lines
		}
		out[name] = tg.ask(path, proxy, h).Result()
	}
	return out
}

// The 2xx answer's Cookie is the request's without any of the gateway's
// cookies, under any of their names (session.Names), the app's cookies as
// sent and in order; with none left, the answer has no Cookie, so that a
// proxy replacing the request's Cookie with it sends the app none.
func TestVerify_TheAnswerCarriesTheAppsCookiesOnly(t *testing.T) {
	tg := newCookieGW(t)
	_, v := tg.signIn(t, "ada")
	sess := "__Secure-socialgate_session=" + v
	everyName := "socialgate_session=a; __Host-socialgate_session=b; socialgate_flow=c; " +
		"__Host-socialgate_flow=d; __Secure-socialgate_flow=e"
	for _, c := range []struct {
		name  string
		lines []string
		want  string // "" for no Cookie header
	}{
		{"only the session", []string{sess}, ""},
		{"every gateway cookie", []string{sess + "; " + everyName}, ""},
		{"mixed", []string{"app_pref=1; " + sess + "; theme=dark; socialgate_flow=f; z=9"}, "app_pref=1; theme=dark; z=9"},
		{"every name among the app's", []string{"a=1; socialgate_session=a; b=2; " + sess + "; __Host-socialgate_session=b; c=3; " +
			"socialgate_flow=c; d=4; __Host-socialgate_flow=d; e=5; __Secure-socialgate_flow=e; f=6"}, "a=1; b=2; c=3; d=4; e=5; f=6"},
		{"one line per cookie (HTTP/2)", []string{"app_pref=1", sess, "theme=dark", "__Host-socialgate_flow=f"}, "app_pref=1; theme=dark"},
		{"only gateway lines", []string{sess, "socialgate_flow=f"}, ""},
		{"odd spacing", []string{"  app_pref=1 ;" + sess + " ;;  socialgate_flow =f;theme=dark ;  "}, "app_pref=1; theme=dark"},
		{"a value that names the gateway's cookie", []string{sess + "; last=socialgate_session; q=__Secure-socialgate_session=x"},
			"last=socialgate_session; q=__Secure-socialgate_session=x"},
		{"names that contain the gateway's", []string{"xsocialgate_session=1; " + sess + "; my_socialgate_session=2; socialgate_sessions=3; __Host-socialgate_flowx=4"},
			"xsocialgate_session=1; my_socialgate_session=2; socialgate_sessions=3; __Host-socialgate_flowx=4"},
		{"values kept byte for byte", []string{`pref="a b"; ` + sess + `; t=%3D%3B==`}, `pref="a b"; t=%3D%3B==`},
	} {
		for proxyName, resp := range tg.askWithCookies(t, "/_auth/verify", c.lines...) {
			checkAnswersCookie(t, c.name+", "+proxyName, resp, c.want)
		}
	}
}

// A request that passes without a session (a public policy): the answer
// carries its cookies as one line, or no Cookie when it has none.
func TestVerify_AnAnonymousPassCarriesTheAppsCookies(t *testing.T) {
	tg := newCookieGW(t)
	for _, c := range []struct {
		name  string
		lines []string
		want  string
	}{
		{"no Cookie", nil, ""},
		{"an empty Cookie", []string{""}, ""},
		{"a Cookie without cookies", []string{" ; ;"}, ""},
		{"one line", []string{"app_pref=1; theme=dark"}, "app_pref=1; theme=dark"},
		{"one line per cookie (HTTP/2)", []string{"app_pref=1", "", "theme=dark"}, "app_pref=1; theme=dark"},
		{"a dead session cookie among them", []string{"app_pref=1", "__Secure-socialgate_session=dead", "theme=dark"}, "app_pref=1; theme=dark"},
	} {
		for proxyName, resp := range tg.askWithCookies(t, "/_auth/verify/open", c.lines...) {
			checkAnswersCookie(t, c.name+", "+proxyName, resp, c.want)
		}
	}
}

// Refusals and redirects, which a proxy may hand to the browser, never
// echo the request's cookies.
func TestVerify_RefusalsCarryNoCookie(t *testing.T) {
	tg := newCookieGW(t)
	_, v := tg.signIn(t, "ada")
	for _, c := range []struct{ name, path, cookie string }{
		{"no session", "/_auth/verify", "app_pref=1; theme=dark"},
		{"a dead session", "/_auth/verify", "app_pref=1; __Secure-socialgate_session=dead"},
		{"a policy that refuses", "/_auth/verify/admins", "app_pref=1; __Secure-socialgate_session=" + v},
		{"an unknown policy", "/_auth/verify/nope", "app_pref=1; __Secure-socialgate_session=" + v},
	} {
		for proxyName, resp := range tg.askWithCookies(t, c.path, c.cookie) {
			if resp.StatusCode < 300 || resp.Header["Cookie"] != nil || resp.Header[envoyHeadersToRemove] != nil {
				t.Errorf("%s, %s: verify = %d with Cookie %q, %s %q; want a refusal without either",
					c.name, proxyName, resp.StatusCode, resp.Header["Cookie"], envoyHeadersToRemove, resp.Header[envoyHeadersToRemove])
			}
		}
	}
}

// checkEnvoyRemoval checks that a 2xx without Cookie or Authorization
// tells Envoy to remove the request's (x-envoy-auth-headers-to-remove:
// Envoy overwrites only the headers the answer has), and names none that
// the answer has.
// checkAnswersCookie fails unless resp is verify's 200 with Cookie want
// (none for "") and Envoy's removal list to match.
func checkAnswersCookie(t *testing.T, what string, resp *http.Response, want string) {
	t.Helper()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: verify = %d, want 200", what, resp.StatusCode)
	}
	if got := resp.Header["Cookie"]; want == "" && got != nil || want != "" && (len(got) != 1 || got[0] != want) {
		t.Errorf("%s: the answer's Cookie = %q, want %q", what, got, want)
	}
	checkEnvoyRemoval(t, resp, want == "")
}

func checkEnvoyRemoval(t *testing.T, resp *http.Response, none bool) {
	t.Helper()
	checkEnvoyRemovalOf(t, resp, none, resp.Header["Authorization"] == nil)
}

func checkEnvoyRemovalOf(t *testing.T, resp *http.Response, noCookie, noAuthorization bool) {
	t.Helper()
	want := map[[2]bool]string{{true, true}: "cookie, authorization", {true, false}: "cookie", {false, true}: "authorization"}[[2]bool{noCookie, noAuthorization}]
	got := resp.Header.Values("X-Envoy-Auth-Headers-To-Remove")
	if want != "" && (len(got) != 1 || got[0] != want) || want == "" && got != nil {
		t.Errorf("an answer with Cookie %q and Authorization %q has x-envoy-auth-headers-to-remove %q, want %q",
			resp.Header["Cookie"], resp.Header["Authorization"], got, want)
	}
}

// Two live sessions' cookies in one question (one planted beside the
// other, or both copied by whoever asks): verify admits neither, echoes
// no cookie, and both sessions end, so neither cookie passes again alone.
func TestVerify_TwoLiveSessionsAdmitNeitherAndBothEnd(t *testing.T) {
	tg := newCookieGW(t)
	_, ada := tg.signIn(t, "ada")
	_, mallory := tg.signIn(t, "mallory")
	both := "__Secure-socialgate_session=" + mallory + "; app=1; __Secure-socialgate_session=" + ada
	resp := tg.askWithCookies(t, "/_auth/verify", both)["nginx"]
	if resp.StatusCode != http.StatusUnauthorized || resp.Header["Cookie"] != nil || resp.Header.Get("X-Auth-User-Id") != "" {
		t.Fatalf("two live sessions: %d, Cookie %q, user %q; want 401 and neither", resp.StatusCode,
			resp.Header["Cookie"], resp.Header.Get("X-Auth-User-Id"))
	}
	for who, v := range map[string]string{"ada": ada, "mallory": mallory} {
		if resp := tg.askWithCookies(t, "/_auth/verify", "__Secure-socialgate_session="+v)["nginx"]; resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s's cookie alone after the question with both: %d, want 401 (ended)", who, resp.StatusCode)
		}
	}
}
