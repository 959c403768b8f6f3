package caddymodule

import (
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
)

// syntaxOptions reads the Caddyfile syntax in the doc comment of function
// fn in file: the options of each block, by the path of options that open
// it ("" for the directive's own block, "dev_provider/provider").
func syntaxOptions(t *testing.T, file, fn string) map[string][]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	for _, decl := range f.Decls {
		d, ok := decl.(*ast.FuncDecl)
		if !ok || d.Name.Name != fn || d.Doc == nil {
			continue
		}
		out := map[string][]string{}
		var open []string // the option that opened each block
		for _, line := range strings.Split(d.Doc.Text(), "\n") {
			depth := len(line) - len(strings.TrimLeft(line, "\t"))
			fields := strings.Fields(line)
			if depth == 0 || len(fields) == 0 {
				continue
			}
			open = open[:min(len(open), depth-1)]
			if fields[0] == "}" {
				continue
			}
			if depth > 1 {
				owner := strings.Join(open[1:depth-1], "/")
				out[owner] = append(out[owner], fields[0])
			}
			if strings.HasSuffix(line, "{") {
				open = append(open, fields[0])
			}
		}
		return out
	}
	t.Fatalf("%s has no doc comment of %s", file, fn)
	return nil
}

// TestOptionLists_MatchTheDocumentedSyntax holds the option lists that the
// "unrecognized option" errors offer to the syntax the parsers document.
func TestOptionLists_MatchTheDocumentedSyntax(t *testing.T) {
	app := syntaxOptions(t, "caddyfile.go", "UnmarshalCaddyfile")
	webhook := syntaxOptions(t, "webhooks.go", "parseWebhook")
	handler := syntaxOptions(t, "caddyfile_handler.go", "parseHandler")
	for _, c := range []struct {
		name       string
		documented []string
		list       []string
	}{
		{"socialgate global option", app[""], appOptions},
		{"storage postgres", app["storage"], postgresOptions},
		{"dev_provider", app["dev_provider"], devProviderOptions},
		{"dev_provider provider", app["dev_provider/provider"], devIdentityOptions},
		{"provider", app["provider"], providerOptions},
		{"webhook (global option)", app["webhook"], webhookOptions},
		{"webhook", webhook[""], webhookOptions},
		{"socialgate directive", handler[""], handlerOptions},
	} {
		if !slices.Equal(slices.Sorted(slices.Values(c.documented)), slices.Sorted(slices.Values(c.list))) {
			t.Errorf("%s: documented %v, listed %v", c.name, c.documented, c.list)
		}
	}
}

func TestDevProviderCheck_OnlyLoopbackUnlessAllowRemote(t *testing.T) {
	for listen, ok := range map[string]bool{"": true, "localhost:9999": true, "127.0.0.1:1": true, "[::1]:9999": true,
		":9999": false, "0.0.0.0:9999": false, "[::]:9999": false, "192.168.1.5:9999": false, "devbox:9999": false, "localhost": false} {
		if err := (&config.DevProvider{Listen: listen}).Check(); (err == nil) != ok {
			t.Errorf("listen %q: %v", listen, err)
		}
	}
	if err := (&config.DevProvider{Listen: "0.0.0.0:9999", AllowRemote: true}).Check(); err != nil {
		t.Errorf("allow_remote: %v", err)
	}
}
