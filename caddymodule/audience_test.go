package caddymodule_test

import (
	"fmt"
	"strings"
	"testing"
)

// A route may sign the identity token for an audience of its own
// (identity_audience), in place of the app's: sites sharing one gateway
// share its keys, and an upstream that checks aud then refuses a token
// captured from another site's upstream.
func TestIdentityAudience_ARouteSignsForItsOwnAudience(t *testing.T) {
	e := newEnv(t, options{Global: "identity_audience https://app.example",
		Site: "route /shop/* {\n\t\tsocialgate {\n\t\t\tidentity_audience https://shop.example shop\n\t\t}\n\t}"})
	b := newBrowser(t)
	b.signInDev(e, "/", ada)
	for _, tc := range []struct{ path, want string }{
		{"/shop/cart", "[https://shop.example shop]"},
		{"/", "https://app.example"},
		{"/shop/cart", "[https://shop.example shop]"}, // from the cache, still its own
	} {
		b.get(e.Base + tc.path)
		claims := identityClaims(t, b, e, e.Upstream.Last(t).Get("X-Auth-Jwt"))
		if got := fmt.Sprint(claims["aud"]); got != tc.want {
			t.Errorf("%s: aud %s, want %s", tc.path, got, tc.want)
		}
	}
	err := e.Load(options{Site: "route /shop/* {\n\t\tsocialgate {\n\t\t\tidentity_audience\n\t\t}\n\t}"})
	if err == nil || !strings.Contains(err.Error(), "identity_audience: want <aud...>") {
		t.Errorf("identity_audience without a value: %v", err)
	}
}
