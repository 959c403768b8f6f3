package gateway

import "testing"

func TestAmbiguousPath(t *testing.T) {
	for path, want := range map[string]bool{
		"/":                   false,
		"/blog/post":          false,
		"/blog/post/":         false,
		"//blog//post":        false,
		"/blog/v1.2/a.b.c":    false,
		"/blog/a..b":          false,
		"/blog/..a":           false,
		"/blog/café":          false,
		"/blog/日本語":           false,
		"/blog/a b":           false,
		"/blog/..;/admin":     true,
		"/blog;x/y":           true,
		"/blog/..\\admin":     true,
		"/blog\\admin":        true,
		"/blog/%2e%2e/admin":  true, // "%" left after decoding: %252e%252e sent
		"/blog/../admin":      true,
		"/blog/./admin":       true,
		"/blog/..":            true,
		"/blog/...":           true,
		"/blog/.. /admin":     true,
		"/blog/. ./admin":     true,
		"/blog/ /admin":       true,
		"/blog/\x00/admin":    true,
		"/blog/\n":            true,
		"/blog/\x7f":          true,
		"/blog/\xc0\xae":      true,
		"/blog/．．/admin":      true,
		"/blog/x／..／admin":    true,
		"/blog/..＼admin":      true,
		"/blog/..；/admin":     true,
		"/blog/․․/admin":      true,
		"/blog/∕admin":        true,
		"/blog/%":             true,
		"/blog/100%25-pure":   true,
		"/blog/post.":         false,
		"/blog/post.html":     false,
		"/blog/weird-name_~!": false,
	} {
		if got := ambiguousPath(path); got != want {
			t.Errorf("ambiguousPath(%q) = %v, want %v", path, got, want)
		}
	}
}
