package session

import (
	"slices"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func TestGroupsOf_QualifiesByProviderOnceAndLeavesOutWhatAHeaderCannotCarry(t *testing.T) {
	got := groupsOf([]*store.ExternalAccount{
		{Provider: "corp", Groups: []string{"staff", "admins", "staff", "a,b", "evil\r\nX-Auth-User-Id: x"}},
		{Provider: "github"},
		{Provider: "github", Groups: []string{"acme/platform", "admins"}},
	})
	want := []string{"corp:staff", "corp:admins", "github:acme/platform", "github:admins"}
	if !slices.Equal(got, want) {
		t.Errorf("groupsOf = %q, want %q", got, want)
	}
	if groupsOf(nil) != nil {
		t.Error("no accounts, yet groups")
	}
}
