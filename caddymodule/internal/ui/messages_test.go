package ui

import (
	"go/ast"
	"go/parser"
	"go/token"
	"html/template"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

// templateMessages lists the message IDs that the shipped templates say.
func templateMessages(t *testing.T) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	files, _ := fs.Glob(embedded, "templates/*.html")
	for _, f := range files {
		src, _ := embedded.ReadFile(f)
		tmpl, err := template.New(f).Funcs(funcs(nil)).Parse(string(src))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range tmpl.Templates() {
			walk(d.Tree.Root, func(cmd *parse.CommandNode) {
				if isT(cmd.Args[0]) {
					ids[cmd.Args[1].(*parse.StringNode).Text] = true
				}
			})
		}
	}
	return ids
}

// codeMessages lists the message IDs that the gateway's Go code says
// (i18n.M calls), checking each call as the templates' are checked: a
// quoted ID the catalogue has, and exactly its placeholders as names.
func codeMessages(t *testing.T, cat *i18n.Catalog) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	files, _ := filepath.Glob("../../*.go")
	more, _ := filepath.Glob("../*/*.go")
	fset := token.NewFileSet()
	for _, name := range append(files, more...) {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || !isIdent(sel.X, "i18n") || sel.Sel.Name != "M" && sel.Sel.Name != "Code" {
				return true
			}
			at := fset.Position(call.Pos())
			if sel.Sel.Name == "Code" {
				// i18n.Code("audit.", action) says the messages under its
				// prefix; console's tests hold that they are exactly the
				// codes that exist (the audit actions).
				prefix := ""
				if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					prefix, _ = strconv.Unquote(lit.Value)
				}
				if !strings.HasSuffix(prefix, ".") {
					t.Errorf("%s: i18n.Code's prefix must be a quoted string ending in a dot", at)
				}
				for _, id := range cat.IDs() {
					if prefix != "" && strings.HasPrefix(id, prefix) {
						ids[id] = true
					}
				}
				return true
			}
			lits := make([]string, len(call.Args))
			for i, a := range call.Args {
				if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					lits[i], _ = strconv.Unquote(lit.Value)
				}
			}
			if len(lits) == 0 || lits[0] == "" {
				t.Errorf("%s: i18n.M's message ID must be a quoted string", at)
				return true
			}
			params, ok := cat.Params(lits[0])
			if !ok {
				t.Errorf("%s: no message file has %q", at, lits[0])
				return true
			}
			var names []string
			for i := 1; i < len(lits); i += 2 {
				names = append(names, lits[i])
			}
			slices.Sort(names)
			if !slices.Equal(names, params) {
				t.Errorf("%s: %q takes %v, the call gives %v", at, lits[0], params, names)
			}
			ids[lits[0]] = true
			return true
		})
	}
	return ids
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// The templates and the code name only messages that exist, with their
// placeholders; every shipped message is said somewhere.
func TestMessages_TemplatesAndCodeSayOnlyExistingMessages(t *testing.T) {
	if _, err := New(Options{}); err != nil { // New checks the templates
		t.Fatal(err)
	}
	cat, err := i18n.Load(i18n.Options{})
	if err != nil {
		t.Fatal(err)
	}
	used := templateMessages(t)
	code := codeMessages(t, cat)
	if len(used) < 40 || len(code) < 40 {
		t.Fatalf("found %d messages in templates and %d in code: the scan is broken", len(used), len(code))
	}
	maps.Copy(used, code)
	for _, id := range cat.IDs() {
		if !used[id] {
			t.Errorf("message %q is said nowhere", id)
		}
	}
}

// A template of the operator's that names a message no file has, or
// passes other placeholders, is refused at load with its file and line.
func TestMessages_OperatorTemplateMistakesFailAtLoad(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown message", `{{define "content"}}<h1>{{t "sign_in.headng" "app" .AppName}}</h1>{{end}}`,
			`template sign-in.html: line 1: no message file has the message "sign_in.headng"`},
		{"missing placeholder", `{{define "content"}}
<h1>{{t "sign_in.heading"}}</h1>{{end}}`,
			`template sign-in.html: line 2: message "sign_in.heading" takes the placeholders [app]; this call gives []`},
		{"extra placeholder", `{{define "content"}}{{t "sign_in.lead" "app" .AppName}}{{end}}`,
			`message "sign_in.lead" takes the placeholders []; this call gives [app]`},
		{"computed ID", `{{define "content"}}{{t .AppName}}{{end}}`, `t's message ID must be a quoted string`},
		{"odd arguments", `{{define "content"}}{{t "sign_in.heading" "app"}}{{end}}`, `pairs of a quoted placeholder name and a value`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "sign-in.html"), []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := New(Options{TemplateDir: dir})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}
