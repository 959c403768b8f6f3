package console

import (
	"encoding/json"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// auditActions are the audit actions that package audit defines (its
// constants named Action…), read from its source: the one list of them.
func auditActions(t *testing.T) []string {
	t.Helper()
	pkgs, err := parser.ParseDir(token.NewFileSet(), "../audit", func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, pkg := range pkgs {
		for _, f := range pkg.Files {
			for _, d := range f.Decls {
				gd, ok := d.(*ast.GenDecl)
				if !ok || gd.Tok != token.CONST {
					continue
				}
				for _, spec := range gd.Specs {
					vs := spec.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if !strings.HasPrefix(name.Name, "Action") || i >= len(vs.Values) {
							continue
						}
						lit, ok := vs.Values[i].(*ast.BasicLit)
						if !ok || lit.Kind != token.STRING {
							t.Errorf("audit.%s is not a string literal", name.Name)
							continue
						}
						actions = append(actions, constant.StringVal(constant.MakeFromLiteral(lit.Value, lit.Kind, 0)))
					}
				}
			}
		}
	}
	if len(actions) < 10 || !slices.Contains(actions, "user.ban") {
		t.Fatalf("found the audit actions %q: the scan is broken", actions)
	}
	return actions
}

// Every audit action that the user's page can show has its words in every
// shipped language, and no language has words for an action that does not
// exist: a new action without its messages fails here, not on the page.
func TestAuditActions_HaveMessagesInEveryLanguage(t *testing.T) {
	actions := auditActions(t)
	files, _ := filepath.Glob("../i18n/messages/*.json")
	if len(files) < 6 {
		t.Fatalf("found the message files %q", files)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var messages map[string]string
		if err := json.Unmarshal(data, &messages); err != nil {
			// Plural forms are objects; audit messages never are.
			var raw map[string]any
			if err := json.Unmarshal(data, &raw); err != nil {
				t.Fatal(err)
			}
			messages = map[string]string{}
			for id, v := range raw {
				if s, ok := v.(string); ok {
					messages[id] = s
				} else if strings.HasPrefix(id, "audit.") {
					t.Errorf("%s: %s is not a plain message", name, id)
				}
			}
		}
		lang := strings.TrimSuffix(filepath.Base(name), ".json")
		for _, a := range actions {
			if strings.TrimSpace(messages["audit."+a]) == "" {
				t.Errorf("%s: audit action %s has no message audit.%s", lang, a, a)
			}
		}
		for id := range messages {
			if a, ok := strings.CutPrefix(id, "audit."); ok && !slices.Contains(actions, a) {
				t.Errorf("%s: message %s is about no audit action", lang, id)
			}
		}
	}
}
