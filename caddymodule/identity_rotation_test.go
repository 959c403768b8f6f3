package caddymodule_test

import (
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// TestIdentityKeyRotate_PublishesBeforeSigningWithoutAReload rotates the
// identity key with the CLI against a running gateway, no reload: the new
// key is in the JWKS at once, the old one signs until identity_key_delay
// has passed, then the new one signs; a verifier holding a cached JWKS
// (honouring its max-age) never meets a key it lacks.
func TestIdentityKeyRotate_PublishesBeforeSigningWithoutAReload(t *testing.T) {
	const delay = 3 * time.Second
	g := newServingGateway(t)
	dir := filepath.Join(g.dir, "socialgate")
	g.start("storage "+dir, "identity_key_delay "+delay.String())
	v := &jwksVerifier{url: g.site.Base + "/_auth/.well-known/jwks.json", cooldown: time.Minute}
	check := func(what, token string) string { t.Helper(); return v.mustVerify(t, what, token) }
	first := newBrowser(t)
	_, token := first.signInDev(g.site, "/", ada)
	oldKid := check("before the rotation", token)
	if resp, _ := first.get(v.url); resp.Header.Get("Cache-Control") != "public, max-age=1" {
		t.Errorf("JWKS Cache-Control %q: want max-age at most half the delay", resp.Header.Get("Cache-Control"))
	}

	r := g.bin.run(t, "identity-key-rotate", "--storage", dir, "--admin", g.admin)
	r.want(t, 0, "in the running gateway's JWKS now, signing from")
	rotated := time.Now()
	kids := jwksKids(t, g.site.Base)
	if len(kids) != 2 || !slices.Contains(kids, oldKid) {
		t.Fatalf("right after the rotation the JWKS holds %v, want the new key and %s", kids, oldKid)
	}
	newKid := kids[0]
	if !strings.Contains(r.stdout, newKid) {
		t.Errorf("the command does not name the new key %s:\n%s", newKid, r.stdout)
	}

	// New sessions keep getting the old key until the delay has passed;
	// every token verifies with whatever JWKS the verifier holds.
	for i := 0; ; i++ {
		_, token := newBrowser(t).signInDev(g.site, "/", ada)
		kid := check("during the rotation", token)
		check("the first session, all along", g.identity(first))
		if kid == newKid {
			if since := time.Since(rotated); since < delay-time.Second {
				t.Fatalf("the new key signs %v after its publication, before the delay %v", since, delay)
			}
			break
		}
		if kid != oldKid {
			t.Fatalf("a token is signed with %s, neither key", kid)
		}
		if time.Since(rotated) > delay+5*time.Second {
			t.Fatalf("the new key does not sign %v after the rotation", time.Since(rotated))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if v.Refetches != 0 {
		t.Errorf("the verifier met %d unknown keys", v.Refetches)
	}

	// A verifier that kept the JWKS of before the rotation far too long
	// fetches it once more and carries on, as the Go recipe of docs/recipes.md does.
	stale := &jwksVerifier{url: v.url, keys: v.keys, expires: time.Now().Add(time.Hour)}
	stale.keys.Keys = slices.DeleteFunc(slices.Clone(stale.keys.Keys), func(k jose.JSONWebKey) bool { return k.KeyID == newKid })
	_, token = newBrowser(t).signInDev(g.site, "/", ada)
	if kid, err := stale.verify(token); err != nil || kid != newKid || stale.Refetches != 1 {
		t.Fatalf("a stale verifier: kid %s, %v, %d refetches", kid, err, stale.Refetches)
	}

	// With the gateway stopped, the file is rotated; it publishes the key
	// at its start.
	g.stop()
	g.bin.run(t, "identity-key-rotate", "--storage", dir).want(t, 0, "publishes it when it starts")
	g.start("storage "+dir, "identity_key_delay "+delay.String())
	if kids := jwksKids(t, g.site.Base); len(kids) != 3 {
		t.Fatalf("after a start the JWKS holds %v, want 3 keys", kids)
	}
	if kid := check("after the restart", g.identity(first)); kid != newKid {
		t.Errorf("right after the restart %s signs, want %s until the delay passes", kid, newKid)
	}
	if resp, _ := first.get(g.site.Base + "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("the first session after the restart: %d", resp.StatusCode)
	}
}
