package redirect_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
)

// allowedReturnTo is the allowlist the Sanitize tests run against.
var allowedReturnTo = []string{"https://good.com/cb", "http://localhost:8080/done", "https://app.example.com"}

func newReturnTo(t testing.TB) *redirect.ReturnTo {
	t.Helper()
	v, err := redirect.NewReturnTo(allowedReturnTo)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hostileReturnTo must fall back to "/" in every disguise of hostileVariants.
var hostileReturnTo = []string{
	// not a path
	"", "?x", "evil.com", ".evil.com", "evil.com/", "./evil", "../evil", "@evil.com", ":evil",
	// network paths and backslashes
	"//evil.com", "///evil.com", "////evil.com", `/\evil.com`, `\\evil.com`, `\/evil.com`, `/\/evil.com`,
	"//evil.com/%2F..", "//evil.com:443/", "//127.0.0.1/", "//[::1]/", "//0x7f.1/", "//2130706433/",
	// other origins
	"https:evil.com", "https:/evil.com", "https:///evil.com", "http://evil.com", "https://evil.com",
	"HTTPS://evil.com/cb", "ftp://evil.com", "wss://good.com/cb", "https://good.com.evil.com/cb",
	"https://evil.com/https://good.com/cb", "https://good.com:8443/cb", "http://good.com/cb",
	// "@" and userinfo tricks
	"https://good.com@evil.com", "https://good.com:443@evil.com", "//good.com@evil.com",
	"https://good.com%40evil.com", "https://good.com/cb@evil.com", "https://evil.com#@good.com/cb",
	"https://evil.com?@good.com/cb", "https://evil.com\\@good.com/cb", "https://user:pass@good.com/cb",
	"//@evil.com",
	// script and data
	"javascript:alert(1)", "JaVaScRiPt:alert(1)", "javascript://%0aalert(1)", "java\tscript:alert(1)",
	"javascript:/%0aalert(1)", "data:text/html,<script>alert(1)</script>",
	"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", "vbscript:msgbox(1)",
	// percent-encoded slashes and backslashes
	"/%2F%2Fevil.com", "/%2fevil.com", "/%5Cevil.com", "/%5cevil.com", "/%252F%252Fevil.com",
	"/%25252F/evil.com", "/%2525252525252525252F/evil.com", "/%%32%46evil.com", "/%2%46/evil.com",
	"/%5C%5Cevil.com", "/%2F%5Cevil.com", "/a%5Cb",
	// whitespace and control characters between the slashes
	"/\t/evil.com", "/\n/evil.com", "/\r/evil.com", "/ /evil.com", "/\x00/evil.com", "/\v/evil.com",
	"/%09/evil.com", "/%20/evil.com", "/%20%20/evil.com", "/%0a/evil.com", "/%0D/evil.com",
	"/%00/evil.com", "/%00", "%00", "/a%00b", "/\x00", "/%7f/evil.com", "/%C2%85/evil.com",
	// dot segments that resolve to a network path
	"/.//evil.com", "/..//evil.com", "/./%2Fevil.com", "/%2e%2e//evil.com", "/a/..//evil.com",
	"/%2e//evil.com", "/x/%2E%2E/%2E%2E//evil.com", "/.%2e//evil.com", "/%3F/%2e%2e//evil.com",
	"/a/%2e%2e%2f%2fevil.com",
	// header injection
	"/\r\nSet-Cookie: a=b", "/%0d%0aSet-Cookie:%20a=b", "/a\rb", "/a\nb", "/%250d%250aX:y",
	// Unicode lookalikes, invisible and whitespace characters
	"/\uFF0Fevil.com", "\uFF0F\uFF0Fevil.com", "/\u2215/evil.com", "/\u2044evil.com",
	"/%EF%BC%8Fevil.com", "/%E2%88%95evil.com", "/%E2%81%84evil.com", "/%EF%BC%BCevil.com",
	"/\u3000/evil.com", "/%E3%80%80/evil.com", "/%C2%A0/evil.com", "/\u200b/evil.com",
	"/%E2%80%8B/evil.com", "/%EF%BB%BF/evil.com", "/%E2%80%AE/evil.com", "/%E2%80%A8/evil.com",
	"/%C0%AF/evil.com", "/%C0%AFevil.com", "/%E0%80%AF/evil.com", "/%C1%9Cevil.com", "/caf%E9",
	// IDN and punycode hosts
	"//xn--80ak6aa92e.com", "//ｅｖｉｌ．ｃｏｍ", "https://xn--gd-vka.com/cb", "https://gооd.com/cb",
	"https://ɡood.com/cb", "//evil。com", "https://good.com\u3002evil.com/cb",
	// too long
	"/" + strings.Repeat("a", maxLen), strings.Repeat("/", 3000), "/" + strings.Repeat("%2F", 700),
}

// hostileAsWritten must fall back to "/" as written, in either case and with
// control characters inserted; encoding them would make them harmless paths.
var hostileAsWritten = []string{
	// fragments that are URLs themselves
	"/x#//evil.com", "/x#javascript:alert(1)", "/x#%2F%2Fevil.com", "/x# //evil.com", "/x#https://evil.com",
	"/x#%6Aavascript:alert(1)", "/x#\\evil",
	// invalid: a browser would have percent-encoded these
	"/café", "/%", "/a%2", "/%zz", "/a%ZZb", "/a b",
}

func TestSanitize_FallsBackOnHostileInput(t *testing.T) {
	v := newReturnTo(t)
	total := 0
	for _, p := range append(hostileReturnTo, hostileAsWritten...) {
		t.Run(strconv.Quote(p[:min(len(p), 40)]), func(t *testing.T) {
			variants := hostileVariants(p)
			if slices.Contains(hostileAsWritten, p) {
				variants = caseAndInsertions(p)
			}
			for _, in := range variants {
				total++
				if got := v.Sanitize(in); got != "/" {
					t.Errorf("Sanitize(%q) = %q, want /", in, got)
				}
			}
		})
	}
	t.Logf("%d hostile inputs", total)
}

// caseAndInsertions is hostileVariants without the encodings, which would
// hide a fragment's "#".
func caseAndInsertions(p string) []string {
	out := []string{p, strings.ToUpper(p), strings.ToLower(p)}
	for i := 0; i <= len(p); i++ {
		for _, ins := range insertions {
			out = append(out, p[:i]+ins+p[i:])
		}
	}
	for _, sl := range slashes {
		out = append(out, strings.ReplaceAll(p, "/", sl))
	}
	return out
}

var localPaths = []string{
	"/", "/dashboard", "/a/b?c=d&e=f", "/path%20with%20space", "/caf%C3%A9", "/%E6%97%A5%E6%9C%AC",
	"/a/b/", "/a//b", "/a/./b", "/a/../b", "/.well-known/x", "/.hidden", "/..foo", "/a+b",
	"/search?q=%2F%2Fnot-a-host", "/search?q=https%3A%2F%2Fexample.com", "/login?next=/x",
	"/@user", "/a:b", "/a;b=c", "/~user/", "/100%25", "/x?", "/x?a=%25",
	"/docs#intro", "/app#/settings", "/app#section-2", "/x?y#z", "/x#:~:text=a",
	"/" + strings.Repeat("a", maxLen-1),
}

func TestSanitize_KeepsSameOriginPaths(t *testing.T) {
	v := newReturnTo(t)
	for _, p := range localPaths {
		if got := v.Sanitize(p); got != p {
			t.Errorf("Sanitize(%q) = %q, want it unchanged", p, got)
		}
	}
}

func TestSanitize_KeepsExactlyAllowedURLs(t *testing.T) {
	v := newReturnTo(t)
	for _, in := range []string{
		"https://good.com/cb", "https://GOOD.COM/cb", "HTTPS://good.com/cb", "https://good.com:443/cb",
		"https://good.com:0443/cb", "https://good.com:/cb", "https://good.com/cb?x=1&y=%2F",
		"https://good.com/cb?", "https://good.com/cb?next=https://evil.com",
		"http://localhost:8080/done", "http://LOCALHOST:8080/done?a",
		"https://app.example.com", "https://app.example.com/", "https://app.example.com:443/?q",
	} {
		if got := v.Sanitize(in); got != in {
			t.Errorf("Sanitize(%q) = %q, want it unchanged", in, got)
		}
	}
}

func TestSanitize_FallsBackOnNearMissesOfAllowedURLs(t *testing.T) {
	v := newReturnTo(t)
	for _, in := range []string{
		"https://good.com/CB", "https://good.com/cb/", "https://good.com/cbx", "https://good.com/cb/evil",
		"https://good.com/cb/../cb", "https://good.com/./cb", "https://good.com//cb", "https://good.com/c%62",
		"https://good.com/cb%2F", "https://good.com/cb#", "https://good.com/cb#x", "https://u@good.com/cb",
		"https://u:p@good.com/cb", "https://@good.com/cb", "https://good.com:8443/cb", "http://good.com/cb",
		"http://good.com:443/cb", "https://good.com:80/cb", "https://good.com./cb", "https://good.com:99999/cb",
		"https://good.com:0/cb", "https://www.good.com/cb", "https://good.co/cb", "http://localhost/done",
		"http://localhost:8081/done", "http://127.0.0.1:8080/done", "https://localhost:8080/done",
		"https://app.example.com/x", "https://app.example.com//", "https:/good.com/cb", "https:good.com/cb",
		"https:///good.com/cb", "//good.com/cb", "good.com/cb", "https://good.com/cb\r\n",
		"https://good.com/cb?x=\n", "https://good.com/cb?\\", "https://good.com/cb?x= ", " https://good.com/cb",
		"https://good.com/cb\t", "https://good.com\t/cb", "https://[good.com]/cb", "https://good.com%2F/cb",
		"https://good.com/cb?" + strings.Repeat("a", maxLen),
	} {
		if got := v.Sanitize(in); got != "/" {
			t.Errorf("Sanitize(%q) = %q, want /", in, got)
		}
	}
}

func TestSanitize_NilAllowsOnlyPaths(t *testing.T) {
	var v *redirect.ReturnTo
	if got := v.Sanitize("/dashboard"); got != "/dashboard" {
		t.Errorf("nil Sanitize(/dashboard) = %q", got)
	}
	if got := v.Sanitize("https://good.com/cb"); got != "/" {
		t.Errorf("nil Sanitize(https://good.com/cb) = %q, want /", got)
	}
}

func TestNewReturnTo_ComparesSchemeAndHostCaseInsensitively(t *testing.T) {
	v, err := redirect.NewReturnTo([]string{"HTTPS://Good.COM:443/Cb", "https://xn--caf-dma.example/cb"})
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"https://good.com/Cb":                "https://good.com/Cb",
		"https://good.com/cb":                "/",
		"https://xn--caf-dma.example/cb":     "https://xn--caf-dma.example/cb",
		"https://café.example/cb":            "/",
		"https://caf%C3%A9.example/cb":       "/",
		"https://XN--CAF-DMA.example:443/cb": "https://XN--CAF-DMA.example:443/cb",
	} {
		if got := v.Sanitize(in); got != want {
			t.Errorf("Sanitize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewReturnTo_RejectsInvalidURLsNamingThem(t *testing.T) {
	for _, tc := range []struct{ url, reason string }{
		{"", "empty"},
		{"/cb", "no scheme"},
		{"good.com/cb", "no scheme"},
		{"//good.com/cb", "no scheme"},
		{"ftp://good.com/", "not http or https"},
		{"myapp://cb", "not http or https"},
		{"javascript:alert(1)", "no authority"},
		{"https:good.com", "no authority"},
		{"https:/good.com/cb", "no host"},
		{"https:///cb", "no host"},
		{"https://u@good.com/", "userinfo"},
		{"https://u:p@good.com/", "userinfo"},
		{"https://good.com/#f", "fragment"},
		{"https://good.com/#", "fragment"},
		{"https://good.com/?q=1", "query"},
		{"https://good.com/?", "query"},
		{"https://good.com:0/", "port"},
		{"https://good.com:65536/", "port"},
		{"https://good com/", "whitespace"},
		{"https://good.com/cb\n", "whitespace"},
		{"https://café.example/", "non-ASCII"},
		{"https://%C3%A9.example/", "punycode"},
		{"https://[::1%25eth0]/", "punycode"},
		{`https://good.com\cb`, "backslash"},
		{"https://good.com/" + strings.Repeat("a", maxLen), "longer"},
		{"https://good.com:port/", "port"},
	} {
		_, err := redirect.NewReturnTo([]string{"https://ok.example/cb", tc.url})
		if err == nil {
			t.Errorf("NewReturnTo(%q) succeeded", tc.url)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, strconv.Quote(tc.url)) || !strings.Contains(msg, tc.reason) {
			t.Errorf("NewReturnTo(%q) error %q does not name the URL and say %q", tc.url, msg, tc.reason)
		}
	}
}

// sanitizeInputs is every input of the tables above with its disguises.
func sanitizeInputs() []string {
	var out []string
	for _, p := range hostileAsWritten {
		out = append(out, caseAndInsertions(p)...)
	}
	for _, p := range slices.Concat(hostileReturnTo, localPaths, allowedReturnTo) {
		out = append(out, hostileVariants(p)...)
	}
	return out
}

func TestSanitize_OutputIsAlwaysSafe(t *testing.T) {
	v := newReturnTo(t)
	in := sanitizeInputs()
	for _, raw := range in {
		checkOutput(t, allowedReturnTo, raw, v.Sanitize(raw))
	}
	t.Logf("%d inputs", len(in))
}

func FuzzSanitize(f *testing.F) {
	for _, p := range slices.Concat(hostileReturnTo, hostileAsWritten) {
		f.Add(p, "https://good.com/cb")
	}
	for _, p := range localPaths {
		f.Add(p, "http://localhost:8080/done")
	}
	for _, p := range allowedReturnTo {
		f.Add(p, p)
		f.Add(p+"?x", p)
	}
	f.Fuzz(func(t *testing.T, raw, entry string) {
		allowed := allowedReturnTo
		if _, err := redirect.NewReturnTo([]string{entry}); err == nil {
			allowed = append(allowed[:len(allowed):len(allowed)], entry)
		}
		v, err := redirect.NewReturnTo(allowed)
		if err != nil {
			t.Fatal(err)
		}
		if len(allowed) > len(allowedReturnTo) && v.Sanitize(entry) != entry {
			t.Errorf("Sanitize(%q) = %q: an allowed URL must come back unchanged", entry, v.Sanitize(entry))
		}
		checkOutput(t, allowed, raw, v.Sanitize(raw))
	})
}
