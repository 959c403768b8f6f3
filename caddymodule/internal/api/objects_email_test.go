package api_test

import (
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/api"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// An address stored verified before store.CleanEmail held that is not a
// plain one (" victim@example.org", which HTTP and many apps read as
// victim@example.org) is listed unverified and is no primary address,
// as User.PrimaryEmail skips it.
func TestUserObject_AStoredAddressThatIsNotPlainIsUnverified(t *testing.T) {
	u := &store.User{ID: "user_1", Emails: []store.EmailAddress{
		{Email: " victim@example.org", Verified: true, VerifiedBy: []string{"eac_1"}},
		{Email: "own@example.org", Verified: true, VerifiedBy: []string{"eac_1"}},
	}}
	acc := &store.ExternalAccount{ID: "eac_1", UserID: "user_1", Provider: "corp", Email: " victim@example.org", EmailVerified: true}
	obj := api.User(u, []*store.ExternalAccount{acc})
	if obj["primary_email_address"] != "own@example.org" || obj["primary_email_address_id"] != api.EmailAddressID("user_1", "own@example.org") {
		t.Errorf("primary %v (%v), want own@example.org", obj["primary_email_address"], obj["primary_email_address_id"])
	}
	for _, e := range obj["email_addresses"].([]map[string]any) {
		status := e["verification"].(map[string]any)["status"]
		if want := map[bool]string{true: "unverified", false: "verified"}[e["email_address"] == " victim@example.org"]; status != want {
			t.Errorf("%q: %v, want %s", e["email_address"], status, want)
		}
	}
}
