package i18n

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/feature/plural"
	"golang.org/x/text/language"
	"golang.org/x/text/message/catalog"
)

//go:embed messages/*.json
var embedded embed.FS

// file is one language's messages, from the shipped file and the
// operator's, merged.
type file struct {
	source   string // where the language's messages were read, for messages
	messages map[string]text
}

// text is one message in one language: a string, or plural forms (zero,
// one, two, few, many, other, =N) chosen by the placeholder count.
type text struct {
	plain  string
	forms  map[string]string // nil for a plain string
	source string            // the file it came from
}

// readFiles reads the shipped message files, then those of dir over them.
func readFiles(dir string) (map[language.Tag]*file, error) {
	files := map[language.Tag]*file{}
	shipped, _ := fs.Glob(embedded, "messages/*.json")
	for _, name := range shipped {
		data, _ := embedded.ReadFile(name)
		if err := addFile(files, path.Base(name), "shipped "+path.Base(name), data); err != nil {
			return nil, err
		}
	}
	if dir == "" {
		return files, nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("messages: %w", err)
	}
	// English first: the other languages' new IDs must be in it.
	slices.SortStableFunc(entries, func(a, b fs.DirEntry) int {
		return boolInt(b.Name() == "en.json") - boolInt(a.Name() == "en.json")
	})
	for _, e := range entries {
		if e.IsDir() || filepath.Ext(e.Name()) != ".json" {
			continue
		}
		name := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("messages: %w", err)
		}
		if err := addFile(files, e.Name(), name, data); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// idPattern is what message IDs look like: sign_in.heading.
var idPattern = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_]+)*$`)

// addFile merges one message file, named LANG.json, into files.
func addFile(files map[language.Tag]*file, name, source string, data []byte) error {
	tag, err := language.Parse(strings.TrimSuffix(name, ".json"))
	if err != nil {
		return fmt.Errorf("messages: %s: the file name is not a language tag like de.json or pt-BR.json", source)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return fmt.Errorf("messages: %s: %w", source, err)
	}
	f := files[tag]
	if f == nil {
		f = &file{source: source, messages: map[string]text{}}
		files[tag] = f
	}
	for id, v := range raw {
		if !idPattern.MatchString(id) {
			return fmt.Errorf("messages: %s: %q is not a message ID like sign_in.heading", source, id)
		}
		t := text{source: source}
		if err := json.Unmarshal(v, &t.plain); err != nil {
			if err := json.Unmarshal(v, &t.forms); err != nil || t.forms == nil {
				return fmt.Errorf("messages: %s: message %q is neither a string nor an object of plural forms", source, id)
			}
		}
		f.messages[id] = t
	}
	return nil
}

// namePattern is what placeholder names look like.
var namePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// placeholderPattern finds {name} in a message.
var placeholderPattern = regexp.MustCompile(`\{[^{}]*\}?`)

// placeholders returns the names of t's placeholders, sorted, once each.
func (t text) placeholders() []string {
	seen := map[string]bool{}
	for _, s := range t.strings() {
		for _, m := range placeholderPattern.FindAllString(s, -1) {
			seen[strings.Trim(m, "{}")] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

func (t text) strings() []string {
	if t.forms == nil {
		return []string{t.plain}
	}
	return slices.Collect(maps.Values(t.forms))
}

// countParam is the placeholder whose value chooses the plural form.
const countParam = "count"

// compile turns t into an x/text message for tag, whose arguments are
// params in that order: {name} becomes %[i]v, and plural forms become a
// plural.Selectf on count. A stand-in (English where a translation is
// missing) keeps only the forms that tag's language has.
func (t text) compile(tag language.Tag, params []string, standIn bool) (catalog.Message, error) {
	if t.forms == nil {
		s, err := printfFormat(t.plain, params)
		return catalog.String(s), err
	}
	count := slices.Index(params, countParam)
	if count < 0 {
		return nil, fmt.Errorf("has plural forms but its English has no {%s} to choose them by", countParam)
	}
	if _, ok := t.forms["other"]; !ok {
		return nil, errors.New(`has plural forms without "other"`)
	}
	used := integerForms(tag)
	var cases []any
	for _, form := range slices.Sorted(maps.Keys(t.forms)) {
		if standIn && !used[form] && form[0] != '=' {
			continue
		}
		if form[0] == '=' {
			if _, err := strconv.ParseUint(form[1:], 10, 16); err != nil {
				return nil, fmt.Errorf("has the plural form %q, which is not =N with N a whole number", form)
			}
		} else if !used[form] {
			return nil, fmt.Errorf("has the plural form %q, which this language does not use (it uses: %s)", form, strings.Join(slices.Sorted(maps.Keys(used)), ", "))
		}
		s, err := printfFormat(t.forms[form], params)
		if err != nil {
			return nil, err
		}
		cases = append(cases, form, catalog.String(s))
	}
	if !standIn {
		for form := range used {
			if _, ok := t.forms[form]; !ok {
				return nil, fmt.Errorf("lacks the plural form %q (this language uses: %s)", form, strings.Join(slices.Sorted(maps.Keys(used)), ", "))
			}
		}
	}
	// "other" last: Selectf takes the first case that matches, and other
	// matches every number.
	for i := 0; i < len(cases); i += 2 {
		if cases[i] == "other" {
			cases = append(append(cases[:i:i], cases[i+2:]...), cases[i:i+2]...)
			break
		}
	}
	return plural.Selectf(count+1, "%d", cases...), nil
}

// integerForms returns the plural forms that whole numbers take in tag's
// language (CLDR's rules, as x/text has them): a count is a whole number.
func integerForms(tag language.Tag) map[string]bool {
	names := map[plural.Form]string{plural.Zero: "zero", plural.One: "one", plural.Two: "two",
		plural.Few: "few", plural.Many: "many", plural.Other: "other"}
	forms := map[string]bool{}
	for i := range 1000 {
		forms[names[plural.Cardinal.MatchPlural(tag, i, 0, 0, 0, 0)]] = true
	}
	return forms
}

// printfFormat turns a message with {name} placeholders into the printf
// format that x/text formats: each placeholder becomes %[i]v, i its name's
// position in params; a literal % is escaped. A placeholder that the
// English message lacks, or an unclosed brace, is an error.
func printfFormat(s string, params []string) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexAny(s, "{}%")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i] {
		case '%':
			b.WriteString("%%")
			s = s[i+1:]
		case '}':
			return "", errors.New(`has a "}" that closes no placeholder`)
		case '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return "", errors.New(`has a "{" that no "}" closes`)
			}
			name := s[i+1 : i+end]
			if !namePattern.MatchString(name) {
				return "", fmt.Errorf("has {%s}, which is not a placeholder like {provider}", name)
			}
			n := slices.Index(params, name)
			if n < 0 {
				return "", fmt.Errorf("has the placeholder {%s}, which the English message does not have (it has: %s)", name, braced(params))
			}
			fmt.Fprintf(&b, "%%[%d]v", n+1)
			s = s[i+end+1:]
		}
	}
}

func braced(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return "{" + strings.Join(names, "}, {") + "}"
}
