package caddymodule_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

// TestDocs_CaddyfileExamplesAdapt adapts what the docs tell operators to
// write: Caddyfile.example, deploy/Caddyfile, every whole Caddyfile in README.md and docs/
// (each named by its path, so that README.md and docs/providers/README.md both count),
// and every provider block and PostgreSQL storage block there (inside a
// global option and a site that uses it). Snippets with … are outlines and
// site blocks need their global option: those are left out.
func TestDocs_CaddyfileExamplesAdapt(t *testing.T) {
	sources := map[string]string{}
	for _, file := range []string{"../Caddyfile.example", "../deploy/Caddyfile"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		sources[strings.TrimPrefix(file, "../")] = string(data)
	}
	files, _ := filepath.Glob("../docs/*.md")
	providers, _ := filepath.Glob("../docs/providers/*.md")
	block := regexp.MustCompile("(?s)```caddyfile\n(.*?)```")
	for _, file := range append(append([]string{"../README.md"}, files...), providers...) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range block.FindAllStringSubmatch(string(data), -1) {
			src := m[1]
			name := fmt.Sprintf("%s#%d", strings.TrimPrefix(file, "../"), i+1)
			switch first := strings.TrimSpace(src); {
			case strings.Contains(src, "…"):
			case strings.HasPrefix(first, "{"):
				sources[name] = src
			case strings.HasPrefix(first, "provider "), strings.HasPrefix(first, "storage postgres"):
				sources[name] = "{\n\tsocialgate {\n\t\tdev_provider\n" + src + "\n\t}\n}\n:8080 {\n\tsocialgate\n}\n"
			}
		}
	}
	if len(sources) < 30 {
		t.Fatalf("only %d examples found", len(sources))
	}
	for name, src := range sources {
		t.Run(name, func(t *testing.T) {
			if _, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), map[string]any{"filename": name}); err != nil {
				t.Errorf("%v\n%s", err, src)
			}
		})
	}
}
