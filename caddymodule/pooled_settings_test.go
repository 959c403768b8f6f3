package caddymodule_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
)

// TestReload_RefusesAKeysJSONWhoseKeysChanged: the open Badger store keeps
// the store key and cookie secret it was opened with, so a reload after
// keys.json changed them is refused with what to do, rather than carrying
// on with the old keys until a restart breaks; the running config keeps
// serving, and the original file reloads again.
func TestReload_RefusesAKeysJSONWhoseKeysChanged(t *testing.T) {
	e := newEnv(t, options{})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	path := filepath.Join(e.Storage, "socialgate", keyring.FileName)
	original, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	other := keyring.New()
	for name, change := range map[string]func(k map[string]any){
		"store key":     func(k map[string]any) { k["store_key"] = other.StoreKey },
		"cookie secret": func(k map[string]any) { k["cookie_secret"] = other.CookieSecret },
	} {
		var k map[string]any
		json.Unmarshal(original, &k)
		change(k)
		changed, _ := json.Marshal(k)
		if err := os.WriteFile(path, changed, 0o600); err != nil {
			t.Fatal(err)
		}
		err := e.Load(options{Global: "app_name Changed"})
		if err == nil || !strings.Contains(err.Error(), "store key or cookie secret changed") || !strings.Contains(err.Error(), "restart") {
			t.Errorf("a reload after keys.json's %s changed: %v", name, err)
		}
		if status, _ := apiGet(t, b.c, e.Base+"/still-served", nil); status != http.StatusOK {
			t.Errorf("after the refused reload (%s) the session is gone: %d", name, status)
		}
	}
	if err := os.WriteFile(path, original, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.Load(options{Global: "app_name Restored"}); err != nil {
		t.Fatalf("a reload with the original keys.json: %v", err)
	}
	if status, _ := apiGet(t, b.c, e.Base+"/after", nil); status != http.StatusOK {
		t.Errorf("after the reload the session is gone: %d", status)
	}
}
