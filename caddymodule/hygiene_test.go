package caddymodule_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Upstream hygiene beyond spoofed headers (headers_test.go): nothing may
// remove the gateway's headers after it set them (Connection), add to them
// after it checked them (trailers), or carry its credentials upstream.

// forwardRoute is a route whose socialgate forwards the dev provider's
// token in a header of the operator's choosing.
func forwardRoute(e *env) string {
	return "route /tok/* {\n\t\tsocialgate {\n\t\t\tforward_token dev header X-Upstream-Token\n\t\t}\n\t\treverse_proxy " +
		e.Upstream.Addr() + "\n\t}"
}

func TestHygiene_ConnectionNamingAGatewayHeaderIsRefused(t *testing.T) {
	e := newEnv(t, options{})
	if err := e.Load(options{Site: forwardRoute(e)}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	host := strings.TrimPrefix(e.Base, "http://")
	send := func(path, cookie, connection string) (int, bool) {
		t.Helper()
		before := len(e.Upstream.Requests())
		if cookie != "" {
			cookie = "Cookie: " + cookie + "\r\n"
		}
		resp, _ := advRaw(t, e, "GET "+path+" HTTP/1.1\r\nHost: "+host+"\r\nAccept: application/json\r\n"+cookie+connection+"\r\n")
		return resp.StatusCode, len(e.Upstream.Requests()) > before
	}
	cookie := sessionCookie(b, e)
	for _, tc := range []struct{ path, connection string }{
		{"/p", "Connection: X-Auth-User-Id\r\n"},
		{"/p", "Connection: x-auth-jwt\r\n"},
		{"/p", "Connection: keep-alive, X-Auth-Session-Id\r\n"},
		{"/p", "Connection: keep-alive\r\nConnection: X-Auth-User-Email\r\n"},
		{"/p", "Connection: \t X-AUTH-USER-NAME \t\r\n"},
		{"/p", "Connection: ,,X-Auth-User-Groups,\r\n"},
		{"/p", "Connection: X_Auth_User_Id\r\n"},
		{"/p", "Connection: Authorization\r\n"},
		{"/p", "Connection: Cookie\r\n"},
		{"/tok/x", "Connection: X-Upstream-Token\r\n"},
		{"/tok/x", "Connection: keep-alive, x-upstream-token\r\n"},
	} {
		status, reached := send(tc.path, cookie, tc.connection)
		if status != http.StatusBadRequest || reached {
			t.Errorf("GET %s with %q: status %d, reached the upstream: %v; want 400 and nothing upstream", tc.path, tc.connection, status, reached)
		}
	}
	if status, reached := send("/p", "", "Connection: X-Auth-User-Id\r\n"); reached || status < 400 {
		t.Errorf("without a session: status %d, reached the upstream: %v", status, reached)
	}

	// Other hop-by-hop headers are the client's business: the identity
	// headers and the forwarded token arrive.
	for _, tc := range []struct{ path, connection, want string }{
		{"/p", "Connection: keep-alive\r\n", "X-Auth-Jwt"},
		{"/p", "Connection: X-Custom, keep-alive\r\nX-Custom: 1\r\n", "X-Auth-Jwt"},
		{"/tok/x", "Connection: keep-alive\r\n", "X-Upstream-Token"},
	} {
		if status, reached := send(tc.path, cookie, tc.connection); status != http.StatusOK || !reached {
			t.Fatalf("GET %s with %q: status %d", tc.path, tc.connection, status)
		}
		h := e.Upstream.Last(t)
		if h.Get("X-Auth-User-Id") == "" || h.Get(tc.want) == "" || h.Get("X-Custom") != "" {
			t.Errorf("GET %s with %q: upstream user %q, %s set: %v, X-Custom %q", tc.path, tc.connection,
				h.Get("X-Auth-User-Id"), tc.want, h.Get(tc.want) != "", h.Get("X-Custom"))
		}
	}
}

func TestHygiene_TrailersNeverCarryTheGatewaysHeaders(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	user := e.Upstream.Last(t).Get("X-Auth-User-Id")
	host := strings.TrimPrefix(e.Base, "http://")
	post := func(declared, trailers string) (int, bool) {
		t.Helper()
		before := len(e.Upstream.Requests())
		resp, _ := advRaw(t, e, "POST /p HTTP/1.1\r\nHost: "+host+"\r\nAccept: application/json\r\nCookie: "+sessionCookie(b, e)+
			"\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"+declared+"\r\n5\r\nhello\r\n0\r\n"+trailers+"\r\n")
		return resp.StatusCode, len(e.Upstream.Requests()) > before
	}

	// Declared, they are known before anything goes upstream: refused.
	for _, declared := range []string{
		"Trailer: X-Auth-User-Id\r\n", "Trailer: X-Checksum, x-auth-jwt\r\n", "Trailer: X-Checksum\r\nTrailer: X_AUTH_SESSION_ID\r\n",
		"Trailer: Authorization\r\n", "Trailer: Cookie\r\n",
	} {
		if status, reached := post(declared, ""); status != http.StatusBadRequest || reached {
			t.Errorf("%q: status %d, reached the upstream: %v; want 400", declared, status, reached)
		}
	}

	// HTTP/1.1 hands over undeclared trailers with a declared one: they
	// arrive after the request went upstream, and are dropped.
	status, reached := post("Trailer: X-Checksum\r\n", "X-Checksum: 42\r\nX-Auth-User-Id: user_attacker\r\nX_Auth_Session_Id: sess_attacker\r\n"+
		"x-auth-user-email: ceo@example.com\r\nAuthorization: Bearer forged\r\nCookie: socialgate_session=forged\r\n")
	if status != http.StatusOK || !reached {
		t.Fatalf("a request with trailers: status %d", status)
	}
	got := e.Upstream.LastTrailer()
	if got.Get("X-Checksum") != "42" {
		t.Errorf("the upstream did not receive the declared trailer: %v", got)
	}
	for name := range got {
		if name != "X-Checksum" {
			t.Errorf("trailer %s = %q reached the upstream", name, got[name])
		}
	}
	if h := e.Upstream.Last(t); h.Get("X-Auth-User-Id") != user {
		t.Errorf("upstream user %q, want %q", h.Get("X-Auth-User-Id"), user)
	}
	// Without a declared one, Go keeps trailers off the Request that Caddy's
	// handlers see: nothing to drop, nothing goes upstream.
	if status, reached := post("", "X-Auth-User-Id: user_attacker\r\n"); status != http.StatusOK || !reached || len(e.Upstream.LastTrailer()) != 0 {
		t.Errorf("undeclared trailers only: status %d, upstream trailers %v", status, e.Upstream.LastTrailer())
	}
}

// Over HTTP/2 the server hands over declared trailers only (and refuses the
// stream of one that may not be a trailer, like Authorization).
func TestHygiene_HTTP2TrailersAndConnection(t *testing.T) {
	e := newEnv(t, options{Server: "servers {\n\t\tprotocols h1 h2c\n\t}"})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	post := func(trailer http.Header) (int, bool) {
		t.Helper()
		before := len(e.Upstream.Requests())
		req, _ := http.NewRequest(http.MethodPost, e.Base+"/p", io.NopCloser(strings.NewReader("hello")))
		req.ContentLength = -1
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Cookie", sessionCookie(b, e))
		req.Trailer = trailer
		resp, err := c.Do(req)
		if err != nil {
			return 0, len(e.Upstream.Requests()) > before // the stream was reset
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 {
			t.Fatalf("the request went over %s", resp.Proto)
		}
		return resp.StatusCode, len(e.Upstream.Requests()) > before
	}
	for _, name := range []string{"X-Auth-User-Id", "x_auth_jwt", "X-Auth-Token-Dev", "Cookie", "Authorization"} {
		if status, reached := post(http.Header{name: {"forged"}}); (status != http.StatusBadRequest && status != 0) || reached {
			t.Errorf("h2 trailer %s: status %d, reached the upstream: %v; want 400", name, status, reached)
		}
	}
	if status, reached := post(http.Header{"X-Checksum": {"42"}}); status != http.StatusOK || !reached ||
		e.Upstream.LastTrailer().Get("X-Checksum") != "42" {
		t.Errorf("h2 with a harmless trailer: status %d, upstream trailers %v", status, e.Upstream.LastTrailer())
	}
}

func TestHygiene_SessionTokensNeverGoUpstream(t *testing.T) {
	e, _ := newAdvEnv(t, "")
	token, _ := signInNative(t, e)
	revoked, revokedID := signInNative(t, e)
	if status, _ := advAPI(t, e, http.MethodPost, "/sessions/"+revokedID+"/revoke"); status != http.StatusOK {
		t.Fatalf("revoking a session: %d", status)
	}
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	cookieUser := e.Upstream.Last(t).Get("X-Auth-User-Id")
	const appToken = "Bearer app-token-0123456789"

	for i, tc := range []struct {
		cookie        bool
		authorization []string
		want          []string // the Authorization values the upstream may see
	}{
		{true, []string{"Bearer " + token}, nil},
		{true, []string{"bearer " + token}, nil},
		{true, []string{"Bearer  " + token + " "}, nil},
		{true, []string{token}, nil},
		{true, []string{"Token " + token}, nil},
		{true, []string{"Bearer " + revoked}, nil},
		{true, []string{appToken, "Bearer " + token}, []string{appToken}},
		{true, []string{"Bearer " + token, appToken}, []string{appToken}},
		{true, []string{appToken}, []string{appToken}},
		{false, []string{"Bearer " + token}, nil},
	} {
		h := http.Header{"Authorization": tc.authorization, "Accept": {"application/json"}}
		if tc.cookie {
			h.Set("Cookie", sessionCookie(b, e))
		}
		resp, _ := advDo(t, http.MethodGet, e.Base+"/p", h, nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("case %d: status %d", i, resp.StatusCode)
			continue
		}
		up := e.Upstream.Last(t)
		if got := up["Authorization"]; fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("case %d (cookie %v): the upstream's Authorization is %.60q…, want %q", i, tc.cookie, got, tc.want)
		}
		if tc.cookie && up.Get("X-Auth-User-Id") != cookieUser {
			t.Errorf("case %d: upstream user %q, want the cookie's %q", i, up.Get("X-Auth-User-Id"), cookieUser)
		}
	}

	// The flow cookie goes the way of the session cookie; the app's stay.
	resp, _ := advDo(t, http.MethodGet, e.Base+"/p", http.Header{"Accept": {"application/json"},
		"Cookie": {"theme=dark; " + sessionCookie(b, e) + "; socialgate_flow=" + strings.Repeat("f", 43) + "; lang=en"}}, nil)
	if got := e.Upstream.Last(t).Get("Cookie"); resp.StatusCode != http.StatusOK || got != "theme=dark; lang=en" {
		t.Errorf("status %d, upstream Cookie %q, want the app's cookies only", resp.StatusCode, got)
	}
}

// signInNative signs in as a native app redirected to myapp://cb, through
// corp, and returns the session token and its session id; the leak check
// knows the app's secrets.
func signInNative(t *testing.T, e *env) (token, sessionID string) {
	t.Helper()
	app := newNativeApp()
	recordSecret(app.challenge)
	recordSecret(app.verifier)
	resp, _ := startNative(newBrowser(t), e, app, "myapp://cb")
	back, _ := url.Parse(location(t, resp))
	status, out := redeem(t, e, back.Query().Get("rotating_token_nonce"), app.verifier)
	token, _ = out["session_token"].(string)
	if status != http.StatusOK || token == "" {
		t.Fatalf("native session token: %d %v", status, out)
	}
	recordSecret(token)
	return token, out["session"].(map[string]any)["id"].(string)
}
