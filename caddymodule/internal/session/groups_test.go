package session

import (
	"fmt"
	"slices"
	"strings"
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

func TestGroupsOf_StopsBeforeTheHeaderGrowsPast4KiB(t *testing.T) {
	many := &store.ExternalAccount{Provider: "github"}
	for i := range 500 {
		many.Groups = append(many.Groups, fmt.Sprintf("acme/team-%03d", i))
	}
	got := groupsOf([]*store.ExternalAccount{many})
	header := strings.Join(got, ",")
	if len(header) > maxGroupsHeader || len(header) < maxGroupsHeader-64 || got[0] != "github:acme/team-000" {
		t.Errorf("%d groups, %d bytes of header: want the first ones, just under %d bytes", len(got), len(header), maxGroupsHeader)
	}
}
