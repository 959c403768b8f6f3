package gateway

import (
	"net/http"
	"testing"
)

// askWithAuthorization asks verify (nginx's and Traefik's forms) with the
// given Authorization lines and the cookie, and returns each answer.
func (tg *testGW) askWithAuthorization(t *testing.T, path, cookie string, lines ...string) map[string]*http.Response {
	t.Helper()
	out := map[string]*http.Response{}
	for name, h := range map[string]http.Header{
		"nginx":   nginxAsks("https://app1.example.com/a", cookie),
		"traefik": traefikAsks("app1.example.com", "/a", cookie),
	} {
		if lines != nil {
			h["Authorization"] = append([]string(nil), lines...) // the strip edits it in place
		}
		out[name] = tg.ask(path, proxy, h).Result()
	}
	return out
}

// The 2xx answer's Authorization is the request's without the gateway's
// session tokens (a native app's Bearer token, which the app could replay
// at the gateway and every other app): the app's own credential as sent,
// the first when several are left, and none when none is left, so that a
// proxy replacing the request's Authorization with it sends the app none.
func TestVerify_TheAnswerCarriesTheAppsAuthorizationOnly(t *testing.T) {
	tg := newCookieGW(t)
	_, token := tg.signIn(t, "ada")
	_, other := tg.signIn(t, "bob")
	cookie := "__Secure-socialgate_session=" + token
	for _, c := range []struct {
		name   string
		path   string
		cookie string
		lines  []string
		want   string // "" for no Authorization header
	}{
		{"the session token", "/_auth/verify", "", []string{"Bearer " + token}, ""},
		{"a cookie and the token without a scheme", "/_auth/verify", cookie, []string{token}, ""},
		{"a cookie and the token in another scheme", "/_auth/verify", cookie, []string{"Token  " + token}, ""},
		{"a cookie and another session's token", "/_auth/verify", cookie, []string{"Bearer " + other}, ""},
		{"a cookie and no Authorization", "/_auth/verify", cookie, nil, ""},
		{"a cookie and the app's", "/_auth/verify", cookie, []string{"Bearer app-token"}, "Bearer app-token"},
		{"a cookie and the app's Basic", "/_auth/verify", cookie, []string{"Basic YWRhOnB3"}, "Basic YWRhOnB3"},
		{"the token, then the app's", "/_auth/verify", "", []string{"Bearer " + token, "Bearer app-token"}, "Bearer app-token"},
		{"a cookie, the app's, then the token", "/_auth/verify", cookie, []string{"Bearer app-token", "Bearer " + token}, "Bearer app-token"},
		{"two of the app's", "/_auth/verify", cookie, []string{"Bearer app-token", "Basic YWRhOnB3"}, "Bearer app-token"},
		{"anonymous, no Authorization", "/_auth/verify/open", "", nil, ""},
		{"anonymous, the app's", "/_auth/verify/open", "", []string{"Bearer app-token"}, "Bearer app-token"},
		{"anonymous, a dead token and the app's", "/_auth/verify/open", "", []string{"Bearer " + token + "x", "Bearer app-token"}, "Bearer " + token + "x"},
	} {
		for proxyName, resp := range tg.askWithAuthorization(t, c.path, c.cookie, c.lines...) {
			got := resp.Header["Authorization"]
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s, %s: verify = %d, want 200", c.name, proxyName, resp.StatusCode)
			}
			if c.want == "" && got != nil || c.want != "" && (len(got) != 1 || got[0] != c.want) {
				t.Errorf("%s, %s: the answer's Authorization = %q, want %q", c.name, proxyName, got, c.want)
			}
			checkEnvoyRemovalOf(t, resp, resp.Header["Cookie"] == nil, c.want == "")
		}
	}
}

// Refusals never echo the request's Authorization.
func TestVerify_RefusalsCarryNoAuthorization(t *testing.T) {
	tg := newCookieGW(t)
	_, token := tg.signIn(t, "ada")
	for _, c := range []struct{ name, path, authorization string }{
		{"no session", "/_auth/verify", "Bearer app-token"},
		{"a dead token", "/_auth/verify", "Bearer " + token + "x"},
		{"a policy that refuses", "/_auth/verify/admins", "Bearer " + token},
		{"an unknown policy", "/_auth/verify/nope", "Bearer " + token},
	} {
		for proxyName, resp := range tg.askWithAuthorization(t, c.path, "", c.authorization) {
			if resp.StatusCode < 300 || resp.Header["Authorization"] != nil || resp.Header[envoyHeadersToRemove] != nil {
				t.Errorf("%s, %s: verify = %d with Authorization %q, %s %q; want a refusal without either",
					c.name, proxyName, resp.StatusCode, resp.Header["Authorization"], envoyHeadersToRemove, resp.Header[envoyHeadersToRemove])
			}
		}
	}
}
