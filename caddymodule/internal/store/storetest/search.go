package storetest

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// search returns the ids SearchUsers finds for prefix (one page of 10 at
// offset) and their total.
func (e *env) search(prefix string, offset int) ([]string, int) {
	e.t.Helper()
	found, err := e.st.SearchUsers(context.Background(), store.UserSearch{Prefix: prefix, Limit: 10, Offset: offset})
	if err != nil {
		e.t.Fatalf("SearchUsers(%q): %v", prefix, err)
	}
	if found.More {
		e.t.Errorf("SearchUsers(%q): More on a small store", prefix)
	}
	return userIDs(found.Users), found.Total
}

// expectSearch fails the test unless each prefix finds exactly want.
func (e *env) expectSearch(want []string, prefixes ...string) {
	e.t.Helper()
	for _, p := range prefixes {
		if got, total := e.search(p, 0); !slices.Equal(got, want) || total != len(want) {
			e.t.Errorf("search %q = %v (total %d), want %v", p, got, total, want)
		}
	}
}

// The search finds a user by the start of its id, username, external id,
// any address, its name or any word of it, or a linked account's subject,
// in any case, and by nothing else (not by the middle of a value).
func searchFindsByThePrefixOfEveryTerm(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	ada := &store.User{Name: "Ada King Lovelace", FirstName: "Ada", LastName: "Lovelace", Username: "countess",
		ExternalID: "CRM-1815", Emails: []store.EmailAddress{{Email: "Ada.Byron@Analytical.example"}}}
	if err := e.st.CreateUser(ctx, ada); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second)
	grace := e.signIn(store.SignIn{Account: account("G-Hopper-1906", "grace@navy.example", true), Now: e.clk.Now()}).User.ID
	e.clk.Advance(time.Second)
	// Émile's name is written decomposed (E + combining acute accent): the
	// index holds it composed, as a search types it.
	emile := &store.User{Name: "E\u0301mile Zola"}
	if err := e.st.CreateUser(ctx, emile); err != nil {
		t.Fatal(err)
	}
	e.expectSearch([]string{ada.ID}, "ada", "ADA", "love", "LoveLace", "king", "ada king l", "ada  king", "ada.byron@",
		"ADA.BYRON@ANALYTICAL.EXAMPLE", "count", "crm-18", "crm-1815", ada.ID, strings.ToUpper(ada.ID), "  ada  ")
	e.expectSearch([]string{grace}, "g-hop", "G-HOPPER-1906", "grace@", "name of g", grace)
	e.expectSearch([]string{emile.ID}, "émi", "ÉMILE", "zol")
	e.expectSearch(nil, "", "   ", "ovelace", "@analytical", "byron", "1815", "hopper", "nobody",
		ada.ID+"x", "user_"+strings.Repeat("z", 30))
	// Every user's id starts with user_: the newest first.
	e.expectSearch([]string{emile.ID, grace, ada.ID}, "user_", "USER")
}

// A change of a user or of its accounts moves the user in the index in
// the same transaction: the old values find it no longer, the new ones
// do; a deleted user is found by nothing.
func searchForgetsOldValues(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	u := &store.User{Name: "Mary Somerville", Username: "polymath", ExternalID: "ext-old"}
	if err := e.st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	first := e.signIn(store.SignIn{LinkToUser: u.ID, Account: account("sub-first", "mary@old.example", true), Now: e.clk.Now()})
	second := e.signIn(store.SignIn{LinkToUser: u.ID, Account: account("sub-second", "", false), Now: e.clk.Now()})
	e.expectSearch([]string{u.ID}, "somer", "polym", "ext-old", "sub-first", "sub-second", "mary@old")
	_, err := e.st.UpdateUser(ctx, u.ID, func(u *store.User) error {
		u.Name, u.Username, u.ExternalID = "Mary Fairfax", "scientist", ""
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	e.expectSearch(nil, "somer", "polym", "ext-old")
	e.expectSearch([]string{u.ID}, "fairf", "mary fair", "scient", "sub-first")
	if _, _, err := e.st.DeleteExternalAccount(ctx, u.ID, first.Account.ID, nil); err != nil {
		t.Fatal(err)
	}
	e.expectSearch(nil, "sub-first")
	e.expectSearch([]string{u.ID}, "sub-second")
	// A new address of an account's user is found; the old one stays on
	// the user's list, unverified (a user never loses an address from its
	// list), and is still found.
	e.signIn(store.SignIn{Account: account("sub-second", "mary@new.example", true), Now: e.clk.Now()})
	e.expectSearch([]string{u.ID}, "mary@new", "mary@old")
	if _, err := e.st.UpdateExternalAccount(ctx, second.Account.ID, func(a *store.ExternalAccount) error {
		a.Label = "relabelled"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	e.expectSearch([]string{u.ID}, "sub-second")
	if err := e.st.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	e.expectSearch(nil, "fairf", "sub-second", "mary@", u.ID, "user_")
	e.checkClean()
}

// The matches come newest first (then by id), a page at a time, with
// their number; a user that matches by several terms comes once.
func searchPagesNewestFirst(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	var ids []string
	for i := range 25 {
		u := &store.User{Name: "Pat Pattern", Username: "pat" + string(rune('a'+i)) + "xx",
			Emails: []store.EmailAddress{{Email: "pat" + string(rune('a'+i)) + "@example.com"}}}
		if err := e.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, u.ID)
		e.clk.Advance(time.Second)
	}
	other := &store.User{Name: "Someone Else"}
	if err := e.st.CreateUser(ctx, other); err != nil {
		t.Fatal(err)
	}
	slices.Reverse(ids)
	for _, tc := range []struct {
		offset int
		want   []string
	}{{0, ids[:10]}, {10, ids[10:20]}, {20, ids[20:]}, {25, nil}, {1000, nil}} {
		if got, total := e.search("PAT", tc.offset); !slices.Equal(got, tc.want) || total != 25 {
			t.Errorf("offset %d: %v (total %d), want %v (total 25)", tc.offset, got, total, tc.want)
		}
	}
	e.expectSearch([]string{ids[24]}, "pata", "patax")
}

// A query is text from an administrator's browser, so anything: NUL (the
// Badger index's separator), bytes that are no UTF-8 (PostgreSQL's text
// refuses them), the highest rune (SearchEnd's bound), LIKE's wildcards,
// a query of megabytes. None is an error, none finds more than its text
// says (NUL, other controls and the highest rune are dropped: SearchKey), and a term or query past MaxSearchTerm bytes is cut at a
// character's boundary on both sides, so the longest name is still found.
func searchTakesAnyQuery(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	long := "Q" + strings.Repeat("é", 120) // 241 bytes: the cut at 200 falls inside an é
	ada := &store.User{Name: "Ada Lovelace"}
	other := &store.User{Name: long}
	for _, u := range []*store.User{ada, other} {
		if err := e.st.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Second)
	}
	e.expectSearch([]string{ada.ID}, "ada\x00", "\x00ada", "a\x00da", "ada\u0085", "ada"+string(rune(0x10FFFF)))
	e.expectSearch([]string{other.ID}, long, strings.ToLower(long), long+" and more", "q"+strings.Repeat("é", 99))
	e.expectSearch(nil, "\x00", "\xff", "\xffada", "ada\xff", string(rune(0x10FFFF)), "%", "_", "%ada", "_da",
		"a%", "*", strings.Repeat("ä", 1<<20), "q"+strings.Repeat("é", 98)+"x")
}
