// Package doclinks holds only a test: it checks the relative links of the
// project's Markdown documentation (README.md, CONTRIBUTING.md, docs/ and
// perf/README.md). Every link to a file must name one that exists, every
// #anchor must name a heading of the page it points to (as GitHub makes
// anchors from headings), and every page must be reachable from the README,
// so a page that moves or a heading that is renamed fails `go test ./...`
// rather than the reader's click.
package doclinks

import (
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// problem is one link that leads nowhere.
type problem struct {
	file, link, reason string
}

func (p problem) String() string { return fmt.Sprintf("%s: %s: %s", p.file, p.link, p.reason) }

// page is what the check reads of one Markdown file.
type page struct {
	links   []string        // link targets, outside code, in order
	anchors map[string]bool // the anchors GitHub makes of its headings
}

var (
	inlineCode = regexp.MustCompile("`+[^`]*`+")
	link       = regexp.MustCompile(`\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	heading    = regexp.MustCompile(`^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$`)
)

// parse reads the links and heading anchors of a Markdown text. Fenced code
// blocks and inline code spans hold no links.
func parse(text string) page {
	p := page{anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			id := slug(m[2])
			if n := seen[id]; n > 0 {
				p.anchors[fmt.Sprintf("%s-%d", id, n)] = true
			} else {
				p.anchors[id] = true
			}
			seen[id]++
		}
		for _, m := range link.FindAllStringSubmatch(inlineCode.ReplaceAllString(line, ""), -1) {
			p.links = append(p.links, m[1])
		}
	}
	return p
}

// slug is the anchor GitHub gives a heading: lower case, Markdown
// emphasis and code marks and punctuation dropped, spaces as hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsNumber(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// check checks the relative links of files, Markdown files by their path
// from the repository's root (slash-separated). exists reports whether a
// path from the root names a file or directory; pages holds every Markdown
// file a link may point to with an anchor (at least files).
func check(files []string, pages map[string]page, exists func(string) bool) []problem {
	var problems []problem
	for _, file := range files {
		for _, target := range pages[file].links {
			if u, err := url.Parse(target); err != nil || u.Scheme != "" || strings.HasPrefix(target, "//") {
				continue // an absolute URL (https:, mailto:): not ours to check
			}
			where, anchor, _ := strings.Cut(target, "#")
			where, err := url.PathUnescape(where)
			if err != nil {
				problems = append(problems, problem{file, target, "not a valid path"})
				continue
			}
			resolved := file
			if where != "" {
				resolved = path.Join(path.Dir(file), where)
				if strings.HasPrefix(resolved, "../") || resolved == ".." {
					problems = append(problems, problem{file, target, "leaves the repository"})
					continue
				}
				if !exists(resolved) {
					problems = append(problems, problem{file, target, resolved + " does not exist"})
					continue
				}
			}
			if anchor == "" {
				continue
			}
			page, ok := pages[resolved]
			switch {
			case !strings.HasSuffix(resolved, ".md"):
				problems = append(problems, problem{file, target, "an anchor into a file that is not Markdown"})
			case !ok:
				problems = append(problems, problem{file, target, resolved + " is not among the checked pages"})
			case !page.anchors[anchor]:
				problems = append(problems, problem{file, target, fmt.Sprintf("%s has no heading #%s", resolved, anchor)})
			}
		}
	}
	return problems
}

// unreachable lists the files that no chain of relative links from start
// reaches.
func unreachable(start string, files []string, pages map[string]page) []string {
	reached := map[string]bool{start: true}
	queue := []string{start}
	for len(queue) > 0 {
		file := queue[0]
		queue = queue[1:]
		for _, target := range pages[file].links {
			where, _, _ := strings.Cut(target, "#")
			if u, err := url.Parse(where); where == "" || err != nil || u.Scheme != "" {
				continue
			}
			next := path.Join(path.Dir(file), where)
			if _, ok := pages[next]; !ok {
				next = path.Join(next, "README.md") // a link to a folder shows its README
			}
			if _, ok := pages[next]; ok && !reached[next] {
				reached[next] = true
				queue = append(queue, next)
			}
		}
	}
	var missed []string
	for _, f := range files {
		if !reached[f] {
			missed = append(missed, f)
		}
	}
	return missed
}

// load reads files (paths from root) into pages.
func load(root string, files []string) (map[string]page, error) {
	pages := map[string]page{}
	for _, f := range files {
		data, err := os.ReadFile(path.Join(root, f))
		if err != nil {
			return nil, err
		}
		pages[f] = parse(string(data))
	}
	return pages, nil
}

// docFiles lists the documentation the check covers, from the repository's
// root: README.md, CONTRIBUTING.md, every Markdown file under docs/, and
// perf/README.md.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md", "CONTRIBUTING.md", "perf/README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".md") {
			return err
		}
		rel, err := filepath.Rel(root, p)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDocs_RelativeLinksResolve fails on a relative link of the docs that
// names no file, or an #anchor that names no heading of its page.
func TestDocs_RelativeLinksResolve(t *testing.T) {
	const root = "../.."
	files := docFiles(t, root)
	pages, err := load(root, files)
	if err != nil {
		t.Fatal(err)
	}
	links := 0
	for _, p := range pages {
		links += len(p.links)
	}
	if len(files) < 20 || links < 100 {
		t.Fatalf("only %d pages with %d links found: is the root %s right?", len(files), links, root)
	}
	exists := func(p string) bool {
		_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
		return err == nil
	}
	for _, p := range check(files, pages, exists) {
		t.Error(p)
	}
}

// TestDocs_EveryPageReachableFromTheREADME fails on a page of the docs that
// no chain of links from README.md leads to.
func TestDocs_EveryPageReachableFromTheREADME(t *testing.T) {
	const root = "../.."
	files := docFiles(t, root)
	pages, err := load(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range unreachable("README.md", files, pages) {
		t.Errorf("%s: no chain of links from README.md reaches it", f)
	}
}

// The check itself: each kind of broken link is caught, and what is not a
// relative link (URLs, code) is left alone.
func TestCheck_FindsEachBrokenLink(t *testing.T) {
	docs := map[string]string{
		"README.md": "# Top\n\n## The `socialgate` global option\n\n## Caddy's own logs, and more\n\n## Twice\n\n## Twice\n",
		"docs/a.md": "# A page\n\n```md\n[in a fence](nowhere.md)\n```\n",
		"docs/b.md": "# B\n",
	}
	files := []string{"README.md", "docs/a.md", "docs/b.md"}
	exists := func(p string) bool {
		_, ok := docs[p]
		return ok || p == "docs" || p == "docs/image.png"
	}
	for _, tc := range []struct {
		name, text string
		want       []string // the reasons, in order; none for a good link
	}{
		{"a page beside", "[b](b.md)", nil},
		{"a page above", "[top](../README.md)", nil},
		{"a folder", "[docs](../docs)", nil},
		{"an image", "![shot](image.png \"a title\")", nil},
		{"an anchor with code marks", "[x](../README.md#the-socialgate-global-option)", nil},
		{"an anchor with punctuation", "[x](../README.md#caddys-own-logs-and-more)", nil},
		{"a repeated heading's second anchor", "[x](../README.md#twice-1)", nil},
		{"an anchor in the same page", "# Here\n[x](#here)", nil},
		{"absolute URLs", "[x](https://example.com/nowhere.md) [y](mailto:a@b.c) [z](//cdn.example/x)", nil},
		{"inline code", "`[x](nowhere.md)`", nil},
		{"a fence", "```\n[x](nowhere.md)\n```", nil},
		{"a missing page", "[x](c.md)", []string{"docs/c.md does not exist"}},
		{"a page at the wrong level", "[x](docs/b.md)", []string{"docs/docs/b.md does not exist"}},
		{"out of the repository", "[x](../../x.md)", []string{"leaves the repository"}},
		{"a missing anchor", "[x](b.md#nowhere)", []string{"docs/b.md has no heading #nowhere"}},
		{"a third repeat that is not there", "[x](../README.md#twice-2)", []string{"README.md has no heading #twice-2"}},
		{"a missing anchor in the same page", "[x](#nowhere)", []string{"docs/a.md has no heading #nowhere"}},
		{"an anchor into an image", "[x](image.png#top)", []string{"an anchor into a file that is not Markdown"}},
		{"two on a line", "[x](c.md) and [y](b.md#b) and [z](d.md)", []string{"docs/c.md does not exist", "docs/d.md does not exist"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pages := map[string]page{}
			for f, text := range docs {
				pages[f] = parse(text)
			}
			pages["docs/a.md"] = parse(docs["docs/a.md"] + tc.text + "\n")
			var got []string
			for _, p := range check(files, pages, exists) {
				got = append(got, p.reason)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// unreachable follows links to pages and to folders (their README.md).
func TestUnreachable_FollowsLinksAndFolders(t *testing.T) {
	pages := map[string]page{
		"README.md":      parse("[docs](docs/)"),
		"docs/README.md": parse("[a](a.md#x)"),
		"docs/a.md":      parse("[back](../README.md)"),
		"docs/orphan.md": parse("[a](a.md)"),
		"perf/README.md": parse(""),
	}
	files := []string{"README.md", "docs/README.md", "docs/a.md", "docs/orphan.md", "perf/README.md"}
	if got, want := unreachable("README.md", files, pages), []string{"docs/orphan.md", "perf/README.md"}; !slices.Equal(got, want) {
		t.Errorf("unreachable: %q, want %q", got, want)
	}
}
