package redirect_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
)

// nativeAllowed is the allowlist the Match tests run against.
var nativeAllowed = []string{
	"myapp://oauth-callback",
	"com.example.app:/callback",
	"com.example.other:///cb",
	"http://127.0.0.1/cb",
	"http://[::1]:8080/cb",
	"http://localhost/native/cb",
	"https://app.example.com/native/cb",
	"https://127.0.0.1/tls",
}

func newAllowlist(t testing.TB) *redirect.Allowlist {
	t.Helper()
	a, err := redirect.NewAllowlist(nativeAllowed)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseNativeRedirect_AcceptsRFC8252Forms(t *testing.T) {
	for _, raw := range []string{
		"myapp://oauth-callback", "com.example.app:/callback", "com.example.app:/oauth2redirect/example-provider",
		"my-app+x.y2://cb/path", "MyApp://CB", "http://127.0.0.1/callback", "http://127.0.0.1:51004/cb",
		"http://[::1]/cb", "http://localhost:8080/cb", "https://app.example.com/cb", "https://app.example.com",
	} {
		u, err := redirect.ParseNativeRedirect(raw)
		if err != nil {
			t.Errorf("ParseNativeRedirect(%q): %v", raw, err)
			continue
		}
		if u.Scheme == "" {
			t.Errorf("ParseNativeRedirect(%q) returned no scheme", raw)
		}
	}
}

func TestParseNativeRedirect_RejectsInvalidURLsNamingThem(t *testing.T) {
	for _, tc := range []struct{ url, reason string }{
		{"", "empty"},
		{"/cb", "no scheme"},
		{"cb", "no scheme"},
		{"//cb", "no scheme"},
		{"1app://cb", "invalid scheme"},
		{"my_app://cb", "invalid scheme"},
		{":cb", "invalid scheme"},
		{"myapp:cb", "no authority"},
		{"myapp:", "neither host nor path"},
		{"myapp://", "neither host nor path"},
		{"myapp://user@cb", "userinfo"},
		{"myapp://:pw@cb", "userinfo"},
		{"myapp://cb#x", "fragment"},
		{"myapp://cb#", "fragment"},
		{"myapp://cb?x=1", "query"},
		{"myapp://cb?", "query"},
		{"javascript:alert(1)", "no authority"},
		{"javascript://cb/%0aalert(1)", "never a redirect target"},
		{"JavaScript://cb", "never a redirect target"},
		{"data://text/html", "never a redirect target"},
		{"file:///etc/passwd", "never a redirect target"},
		{"vbscript://x", "never a redirect target"},
		{"http:///cb", "no host"},
		{"https:/app.example.com/cb", "no host"},
		{"http://127.0.0.1:0/cb", "port"},
		{"http://127.0.0.1:65536/cb", "port"},
		{"myapp://cb x", "whitespace"},
		{"myapp://cb\n", "whitespace"},
		{"myapp://cb\x00", "whitespace"},
		{" myapp://cb", "whitespace"},
		{"myapp://cé", "non-ASCII"},
		{"myapp://c%C3%A9/", "punycode"},
		{`myapp://cb\x`, "backslash"},
		{"myapp://cb/" + strings.Repeat("a", maxLen), "longer"},
	} {
		_, err := redirect.ParseNativeRedirect(tc.url)
		if err == nil {
			t.Errorf("ParseNativeRedirect(%q) succeeded", tc.url)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, strconv.Quote(tc.url)) || !strings.Contains(msg, tc.reason) {
			t.Errorf("ParseNativeRedirect(%q) error %q does not name the URL and say %q", tc.url, msg, tc.reason)
		}
		if _, err := redirect.NewAllowlist([]string{"myapp://ok", tc.url}); err == nil {
			t.Errorf("NewAllowlist accepted %q", tc.url)
		}
	}
}

// nativeMatches must match nativeAllowed.
var nativeMatches = []string{
	"myapp://oauth-callback", "MYAPP://OAUTH-CALLBACK", "myapp://oauth-callback?code=x&state=y",
	"myapp://oauth-callback?", "com.example.app:/callback", "COM.EXAMPLE.APP:/callback?x",
	"com.example.other:///cb", "com.example.other:///cb?code=1",
	"http://127.0.0.1/cb", "http://127.0.0.1:80/cb", "http://127.0.0.1:53123/cb", "http://127.0.0.1:1/cb",
	"http://127.0.0.1:65535/cb?code=1", "http://127.0.0.1:08080/cb", "HTTP://127.0.0.1:9/cb",
	"http://[::1]:8080/cb", "http://[::1]/cb", "http://[::1]:49152/cb?code=1",
	"http://localhost/native/cb", "http://LOCALHOST:3000/native/cb",
	"https://app.example.com/native/cb", "https://APP.example.com:443/native/cb?code=1",
	"https://127.0.0.1/tls", "https://127.0.0.1:443/tls",
}

func TestMatch_AcceptsAllowlistedURLs(t *testing.T) {
	a := newAllowlist(t)
	for _, raw := range nativeMatches {
		if !a.Match(raw) {
			t.Errorf("Match(%q) = false, want true", raw)
		}
	}
}

func TestMatch_RejectsNearMisses(t *testing.T) {
	a := newAllowlist(t)
	for _, raw := range []string{
		// prefixes, suffixes and case of the path
		"myapp://oauth-callback/", "myapp://oauth-callback/evil", "myapp://oauth-callbackx",
		"myapp://oauth-callback.evil.com", "myapp://oauth-callback:1", "myapp://evil", "myapp:/oauth-callback",
		"myapp:oauth-callback", "myappx://oauth-callback", "com.example.app:/callback/", "com.example.app:/callback/evil",
		"com.example.app:/callbackx", "com.example.app:/Callback", "com.example.app:///callback",
		"com.example.app://callback", "com.example.app:callback", "com.example.other:/cb", "com.example.app.evil:/callback",
		"http://127.0.0.1/cb/", "http://127.0.0.1/CB", "http://127.0.0.1/cbx", "http://127.0.0.1/cb/../cb",
		"http://127.0.0.1/c%62", "http://127.0.0.1/cb%2F", "http://127.0.0.1//cb", "http://127.0.0.1/",
		// loopback: only the port may differ, and only for http
		"http://127.0.0.1:0/cb", "http://127.0.0.1:65536/cb", "http://127.0.0.2/cb", "http://127.1/cb",
		"http://2130706433/cb", "http://0x7f.0.0.1/cb", "http://localhost/cb", "http://[::1]:8080/native/cb",
		"http://[0:0:0:0:0:0:0:1]/cb", "http://localhost./native/cb", "http://localhost.evil.com/native/cb",
		"http://127.0.0.1.evil.com/cb", "http://evil.com/cb", "https://127.0.0.1/cb", "https://127.0.0.1:8443/tls",
		"http://127.0.0.1/tls", "http://[::1%25eth0]:8080/cb",
		// web redirect: exact host and port
		"https://app.example.com:8443/native/cb", "http://app.example.com/native/cb",
		"https://evil.app.example.com/native/cb", "https://app.example.com.evil.com/native/cb",
		"https://app.example.com/native/cb/../cb", "https://app.example.com/native/CB",
		// userinfo, fragments and "@" tricks
		"myapp://u@oauth-callback", "myapp://oauth-callback@evil", "http://127.0.0.1@evil.com/cb",
		"http://evil.com@127.0.0.1/cb", "http://evil.com#@127.0.0.1/cb", "http://127.0.0.1/cb#",
		"http://127.0.0.1/cb#frag", "myapp://oauth-callback#x", "https://app.example.com@evil.com/native/cb",
		`http://127.0.0.1:8080\@evil.com/cb`, `http://127.0.0.1/cb\`, `http://127.0.0.1/cb?x=\`,
		// scripts
		"javascript:alert(1)", "javascript://oauth-callback/%0aalert(1)", "data:text/html,x",
		// not URLs at all
		"", "/cb", "oauth-callback", "//oauth-callback", "myapp", "http://127.0.0.1/cb?" + strings.Repeat("a", maxLen),
	} {
		if a.Match(raw) {
			t.Errorf("Match(%q) = true, want false", raw)
		}
	}
}

// nativeNearMisses returns raw with disguises that must not match:
// control and whitespace characters at each position, userinfo, a
// fragment, path suffixes, backslashes and lookalikes for slashes.
func nativeNearMisses(raw string) []string {
	out := []string{raw + "#", raw + "#x", raw + "/evil", raw + "x", raw + "%2F", raw + "/..", raw + "/.", raw + ";x"}
	if strings.Contains(raw, "://") {
		out = append(out, strings.Replace(raw, "://", "://user@", 1), strings.Replace(raw, "://", "://:@", 1))
	}
	for i := 0; i <= len(raw); i++ {
		for _, ins := range append(insertions[:8:8], paddings...) {
			if !strings.HasPrefix(ins, "%") {
				out = append(out, raw[:i]+ins+raw[i:])
			}
		}
	}
	for _, sl := range slashes {
		out = append(out, strings.ReplaceAll(raw, "/", sl))
		for i := range len(raw) {
			if raw[i] == '/' {
				out = append(out, raw[:i]+sl+raw[i+1:])
			}
		}
	}
	return out
}

func TestMatch_RejectsGeneratedNearMisses(t *testing.T) {
	a := newAllowlist(t)
	total := 0
	for _, entry := range nativeAllowed {
		t.Run(entry, func(t *testing.T) {
			for _, raw := range nativeNearMisses(entry) {
				total++
				if a.Match(raw) {
					t.Errorf("Match(%q) = true, want false", raw)
				}
			}
		})
	}
	t.Logf("%d near misses", total)
}

func TestMatch_NilOrEmptyMatchesNothing(t *testing.T) {
	var nilList *redirect.Allowlist
	empty, err := redirect.NewAllowlist(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []*redirect.Allowlist{nilList, empty, {}} {
		if a.Match("myapp://oauth-callback") {
			t.Errorf("%v matched", a)
		}
	}
}

func TestMatch_MatchedURLsReparseToAnAllowlistedTarget(t *testing.T) {
	a := newAllowlist(t)
	var inputs []string
	for _, raw := range append(nativeMatches, nativeAllowed...) {
		inputs = append(inputs, raw, raw+"?code=1")
		inputs = append(inputs, nativeNearMisses(raw)...)
		inputs = append(inputs, hostileVariants(raw)...)
	}
	for _, raw := range inputs {
		checkMatch(t, a, nativeAllowed, raw)
	}
	t.Logf("%d inputs", len(inputs))
}

// checkMatch fails t if a matches raw while raw names none of entries'
// targets (loopback ports aside).
func checkMatch(t *testing.T, a *redirect.Allowlist, entries []string, raw string) {
	t.Helper()
	if a.Match(raw) && !isOneOf(raw, entries, true) {
		t.Errorf("Match(%q) = true, but it is none of %q", raw, entries)
	}
}

func FuzzAllowlistMatch(f *testing.F) {
	for _, raw := range nativeMatches {
		f.Add(raw, "myapp://oauth-callback")
	}
	for _, entry := range nativeAllowed {
		f.Add(entry+"?x", entry)
		for _, raw := range nativeNearMisses(entry)[:12] {
			f.Add(raw, entry)
		}
	}
	f.Fuzz(func(t *testing.T, raw, entry string) {
		entries := nativeAllowed
		if _, err := redirect.ParseNativeRedirect(entry); err == nil {
			entries = append(entries[:len(entries):len(entries)], entry)
		}
		a, err := redirect.NewAllowlist(entries)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > len(nativeAllowed) && !a.Match(entry) {
			t.Errorf("Match(%q) = false: an allowlisted URL must match itself", entry)
		}
		checkMatch(t, a, entries, raw)
	})
}
