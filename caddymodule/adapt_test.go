package caddymodule_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
)

var update = flag.Bool("update", false, "rewrite the adapt golden files")

// TestAdapt_CaddyfileToJSON checks every testdata/adapt/*.caddyfiletest: the
// Caddyfile above the "----------" line adapts to the JSON below it. Run
// with -update to rewrite the JSON after an intended change.
func TestAdapt_CaddyfileToJSON(t *testing.T) {
	files, err := filepath.Glob("../testdata/adapt/*.caddyfiletest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no adapt test files (%v)", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			input, want, _ := strings.Cut(string(data), "----------\n")
			got, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(input), map[string]any{"filename": file})
			if err != nil {
				t.Fatalf("adapting: %v", err)
			}
			if len(warnings) > 0 {
				t.Errorf("warnings: %v", warnings)
			}
			var pretty bytes.Buffer
			json.Indent(&pretty, got, "", "\t")
			pretty.WriteString("\n")
			if *update {
				os.WriteFile(file, []byte(input+"----------\n"+pretty.String()), 0o644)
				return
			}
			if pretty.String() != want {
				t.Errorf("adapted JSON differs from the golden file; run with -update if intended.\ngot:\n%s", pretty.String())
			}
		})
	}
}
