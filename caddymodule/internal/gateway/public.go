package gateway

import (
	"strings"
	"unicode/utf8"
)

// ambiguousPath reports whether a request's decoded path is one that the
// servers behind a proxy may read as another path, so that a public path
// could reach a protected one upstream: a ";" (Tomcat's path parameters,
// /public/..;/admin), a "\" (a separator to IIS), a "%" (decoded again by
// some servers), a control character (NUL ends a path in C), invalid UTF-8
// (overlong dots), a fullwidth form of those ("．", "／", "＼", "；"), or a
// segment of dots and spaces (Windows drops trailing dots and spaces).
func ambiguousPath(path string) bool {
	if strings.ContainsAny(path, ";\\%") || !utf8.ValidString(path) {
		return true
	}
	for _, c := range path {
		if c < 0x20 || c == 0x7f || c == '．' || c == '／' || c == '＼' || c == '；' || c == '․' || c == '﹒' || c == '∕' || c == '⧵' || c == '﹨' {
			return true
		}
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg != "" && strings.TrimRight(seg, ". ") == "" {
			return true
		}
	}
	return false
}
