package caddymodule_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/internal/testkit"
)

// readyLines are the ready lines in the env's debug log, each checked to be
// an info line of the socialgate logger.
func readyLines(t *testing.T, e *env) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(e.Storage, "debug.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var entry struct{ Level, Logger, Msg string }
		if err := json.Unmarshal(sc.Bytes(), &entry); err != nil || !strings.HasPrefix(entry.Msg, "socialgate ready") {
			continue
		}
		if entry.Level != "info" || entry.Logger != "socialgate" {
			t.Errorf("ready line logged at %s by %q, want info by socialgate: %s", entry.Level, entry.Logger, sc.Text())
		}
		out = append(out, entry.Msg)
	}
	return out
}

// The quick start logs one line that says where to sign in and where the
// dev provider is, once; a reload logs it again only when a URL changes.
func TestQuickStart_ReadyLine(t *testing.T) {
	e, config := quickStartConfig(t)
	if err := loadCaddyfile(config); err != nil {
		t.Fatalf("loading Caddyfile.example: %v", err)
	}
	e.settle()
	e.stopAtCleanup()
	want := fmt.Sprintf("socialgate ready: sign in at %s (dev provider at %s)", e.Base, e.DevURL)
	if got := readyLines(t, e); len(got) != 1 || got[0] != want {
		t.Fatalf("ready lines after start = %q, want exactly [%q]", got, want)
	}

	// A reload with the same URLs (only the app name changed) says nothing.
	same := strings.Replace(config, `app_name "socialgate demo"`, `app_name "socialgate demo 2"`, 1)
	if same == config {
		t.Fatal("Caddyfile.example has no app_name any more: update this test")
	}
	if err := loadCaddyfile(same); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	e.settle()
	if got := readyLines(t, e); len(got) != 1 {
		t.Fatalf("ready lines after a reload that keeps the URLs = %q, want the first one only", got)
	}

	// A reload that moves the dev provider says where it went.
	devPort := testkit.FreePort(t)
	moved := strings.ReplaceAll(same, strings.TrimPrefix(e.DevURL, "http://"), fmt.Sprintf("127.0.0.1:%d", devPort))
	if err := loadCaddyfile(moved); err != nil {
		t.Fatalf("reloading: %v", err)
	}
	e.settle()
	want = fmt.Sprintf("socialgate ready: sign in at %s (dev provider at http://127.0.0.1:%d)", e.Base, devPort)
	if got := readyLines(t, e); len(got) != 2 || got[1] != want {
		t.Fatalf("ready lines after moving the dev provider = %q, want a second one %q", got, want)
	}
}
