package caddymodule_test

import (
	"os"
	"strings"
	"testing"
)

// docBlock returns the first caddyfile block of doc (a path from the
// repository's root, such as docs/recipes.md) after the line that starts
// with title: tests run what the docs tell operators to write.
func docBlock(t *testing.T, doc, title string) string {
	t.Helper()
	return docCode(t, doc, title, "caddyfile")
}

// docCode returns the first code block in lang of doc after the line that
// starts with title.
func docCode(t *testing.T, doc, title, lang string) string {
	t.Helper()
	data, err := os.ReadFile("../" + doc)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(data), "\n"+title)
	if ok {
		_, after, ok = strings.Cut(after, "```"+lang+"\n")
	}
	block, _, closed := strings.Cut(after, "```")
	if !ok || !closed {
		t.Fatalf("%s has no %s block after %q", doc, lang, title)
	}
	return block
}

// logFilter is the log filter for Caddy's own logs that docs/operations.md
// gives, with the forward_token headers of the tests' providers.
func logFilter(t *testing.T) string {
	t.Helper()
	var filter []string
	for _, line := range strings.Split(docBlock(t, "docs/operations.md", "## Caddy's own logs"), "\n") {
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
	t.Fatal("the log filter of docs/operations.md has no format filter block")
	return ""
}
