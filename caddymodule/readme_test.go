package caddymodule_test

import (
	"os"
	"strings"
	"testing"
)

// readmeBlock returns the first caddyfile block of README.md after the
// line that starts with title: tests run what the README tells operators to
// write.
func readmeBlock(t *testing.T, title string) string {
	t.Helper()
	return readmeCode(t, title, "caddyfile")
}

// readmeCode returns the first code block in lang of README.md after the
// line that starts with title.
func readmeCode(t *testing.T, title, lang string) string {
	t.Helper()
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n"+title)
	if ok {
		_, after, ok = strings.Cut(after, "```"+lang+"\n")
	}
	block, _, closed := strings.Cut(after, "```")
	if !ok || !closed {
		t.Fatalf("README.md has no %s block after %q", lang, title)
	}
	return block
}

// logFilter is the README's log filter for Caddy's own logs, with the
// forward_token headers of the tests' providers.
func logFilter(t *testing.T) string {
	t.Helper()
	var filter []string
	for _, line := range strings.Split(readmeBlock(t, "- **Caddy's own logs**"), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "format filter {":
			filter = []string{line}
		case filter == nil:
		case line == "}":
			return strings.Join(append(filter, line), "\n")
		case strings.Contains(line, "X-Auth-Token-Github"):
			for _, p := range []string{"Apple", "Corp", "Dev"} { // the providers tests forward tokens of
				filter = append(filter, strings.ReplaceAll(line, "Github", p))
			}
		default:
			filter = append(filter, line)
		}
	}
	t.Fatal("the README's log filter has no format filter block")
	return ""
}
