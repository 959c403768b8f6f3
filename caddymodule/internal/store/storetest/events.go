package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// newEvents returns the events recorded after *cursor, oldest first, and
// moves the cursor past them.
func (e *env) newEvents(cursor *string) []*store.Event {
	e.t.Helper()
	var out []*store.Event
	for range 1000 { // bounded: a page of 7 per round
		page, err := e.st.Events(context.Background(), *cursor, 7)
		if err != nil {
			e.t.Fatalf("Events(%q): %v", *cursor, err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		*cursor = page[len(page)-1].ID
	}
	e.t.Fatal("Events never ran out")
	return nil
}

// expectEvents fails the test unless the events after *cursor have exactly
// the types want, and returns them.
func (e *env) expectEvents(cursor *string, what string, want ...string) []*store.Event {
	e.t.Helper()
	got := e.newEvents(cursor)
	if types := eventTypes(got); !slices.Equal(types, want) {
		e.t.Errorf("%s recorded %q, want %q", what, types, want)
	}
	return got
}

func eventTypes(events []*store.Event) []string {
	types := []string{}
	for _, ev := range events {
		types = append(types, ev.Type)
	}
	return types
}

func eventsSignInRecordsCreationsThenOnlyRealChanges(t *testing.T, o opener) {
	e := o.env(t)
	var cursor string
	first := e.signIn(store.SignIn{Account: account("ann", "ann@example.com", true)})
	evs := e.expectEvents(&cursor, "a first sign-in", store.EventUserCreated, store.EventAccountCreated)
	if len(evs) == 2 {
		created, acc := evs[0], evs[1]
		if created.User == nil || created.User.ID != first.User.ID || created.User.PrimaryEmail() != "ann@example.com" ||
			len(created.Accounts) != 1 || created.Accounts[0].ID != first.Account.ID {
			t.Errorf("user.created snapshot = %+v with accounts %+v", created.User, created.Accounts)
		}
		if acc.Account == nil || acc.Account.ID != first.Account.ID || acc.Account.UserID != first.User.ID {
			t.Errorf("external_account.created snapshot = %+v", acc.Account)
		}
		for _, ev := range evs {
			if !strings.HasPrefix(ev.ID, "evt_") || ev.CreatedAt.IsZero() {
				t.Errorf("event id %q, created at %v", ev.ID, ev.CreatedAt)
			}
		}
	}

	e.signIn(store.SignIn{Account: account("ann", "ann@example.com", true)})
	e.expectEvents(&cursor, "a sign-in that changed nothing but the sign-in time")

	moved := account("ann", "ann@new.example", true)
	e.signIn(store.SignIn{Account: moved})
	evs = e.expectEvents(&cursor, "a sign-in with a new email", store.EventUserUpdated)
	if len(evs) == 1 && !slices.ContainsFunc(evs[0].User.Emails, func(a store.EmailAddress) bool { return a.Email == "ann@new.example" && a.Verified }) {
		t.Errorf("user.updated snapshot has emails %+v, want the new address verified", evs[0].User.Emails)
	}
}

func eventsLinkRecordsTheAccountAndTheUsersChange(t *testing.T, o opener) {
	e := o.env(t)
	bob := e.signIn(store.SignIn{Account: account("bob", "bob@example.com", true)})
	cursor := lastEventID(e)
	gh := account("bob-gh", "bob@work.example", true)
	linked := e.signIn(store.SignIn{Account: gh, LinkToUser: bob.User.ID})
	evs := e.expectEvents(&cursor, "a link adding an address", store.EventAccountCreated, store.EventUserUpdated)
	if len(evs) == 2 {
		if evs[0].Account.ID != linked.Account.ID {
			t.Errorf("external_account.created is about %s, want %s", evs[0].Account.ID, linked.Account.ID)
		}
		if len(evs[1].Accounts) != 2 {
			t.Errorf("user.updated lists %d accounts, want 2", len(evs[1].Accounts))
		}
	}
	e.signIn(store.SignIn{Account: account("bob-x", "", false), LinkToUser: bob.User.ID})
	e.expectEvents(&cursor, "a link of an account without email", store.EventAccountCreated)
}

func eventsRefusedChangesRecordNothing(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	cy := e.signIn(store.SignIn{Account: account("cy", "cy@example.com", true)})
	di := e.signIn(store.SignIn{Account: account("di", "di@example.com", true)})
	cursor := lastEventID(e)

	_, err := e.st.SignIn(ctx, store.SignIn{Account: account("di", "di@example.com", true), LinkToUser: cy.User.ID})
	if !errors.Is(err, store.ErrIdentityTaken) {
		t.Fatalf("linking another user's identity = %v, want ErrIdentityTaken", err)
	}
	e.expectEvents(&cursor, "a sign-in refused with ErrIdentityTaken")

	refused := errors.New("refused")
	if _, _, err := e.st.DeleteExternalAccount(ctx, di.User.ID, di.Account.ID, func([]*store.ExternalAccount) error { return refused }); err != refused {
		t.Fatalf("refused unlink = %v", err)
	}
	if _, err := e.st.UpdateExternalAccount(ctx, di.Account.ID, func(a *store.ExternalAccount) error {
		a.Status = store.StatusNeedsReauthorization
		return store.ErrStale
	}); !errors.Is(err, store.ErrStale) {
		t.Fatalf("aborted update = %v", err)
	}
	if err := e.st.DeleteSession(ctx, store.NewID("sess")); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RevokeSession(ctx, store.NewID("sess")); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteUser(ctx, store.NewID("user")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("DeleteUser(unknown) = %v", err)
	}
	e.expectEvents(&cursor, "refused, aborted and no-op changes")
}

func eventsSessionsRecordCreatedEndedRevoked(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("eli", "", false)}).User
	cursor := lastEventID(e)
	newSession := func() *store.Session {
		s := &store.Session{UserID: u.ID, ExpiresAt: e.clk.Now().Add(time.Hour), UserAgent: "test"}
		if err := e.st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	signedOut, revoked, expired := newSession(), newSession(), newSession()
	evs := e.expectEvents(&cursor, "three new sessions", store.EventSessionCreated, store.EventSessionCreated, store.EventSessionCreated)
	if len(evs) == 3 && (evs[0].Session.ID != signedOut.ID || evs[0].Session.UserID != u.ID || evs[0].Session.UserAgent != "test") {
		t.Errorf("session.created snapshot = %+v", evs[0].Session)
	}
	if err := e.st.DeleteSession(ctx, signedOut.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RevokeSession(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteSession(ctx, revoked.ID); err != nil { // gone already
		t.Fatal(err)
	}
	evs = e.expectEvents(&cursor, "a sign-out and a revocation", store.EventSessionEnded, store.EventSessionRevoked)
	if len(evs) == 2 && (evs[0].Session.ID != signedOut.ID || evs[1].Session.ID != revoked.ID) {
		t.Errorf("ended %s and revoked %s, want %s and %s", evs[0].Session.ID, evs[1].Session.ID, signedOut.ID, revoked.ID)
	}
	e.clk.Advance(2 * time.Hour)
	if err := e.st.DeleteSession(ctx, expired.ID); err != nil {
		t.Fatal(err)
	}
	e.expectEvents(&cursor, "deleting an expired session (it ended when it expired)")
}

func eventsAccountUpdatesRecordOnlyReauthorizationAndUserChanges(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	fay := e.signIn(store.SignIn{Account: account("fay", "fay@example.com", true)})
	cursor := lastEventID(e)
	update := func(fn func(a *store.ExternalAccount)) {
		t.Helper()
		if _, err := e.st.UpdateExternalAccount(ctx, fay.Account.ID, func(a *store.ExternalAccount) error { fn(a); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	update(func(a *store.ExternalAccount) { a.Tokens.AccessToken = "at-refreshed" })
	e.expectEvents(&cursor, "a token refresh")

	update(func(a *store.ExternalAccount) { a.Status = store.StatusNeedsReauthorization })
	evs := e.expectEvents(&cursor, "a refused refresh", store.EventAccountReauthed)
	if len(evs) == 1 && (evs[0].Account.ID != fay.Account.ID || evs[0].Account.Status != store.StatusNeedsReauthorization) {
		t.Errorf("reauthorization_required snapshot = %+v", evs[0].Account)
	}
	update(func(a *store.ExternalAccount) { a.Label = "still broken" })
	e.expectEvents(&cursor, "an update of an account already needing reauthorization")

	update(func(a *store.ExternalAccount) { a.EmailVerified = false })
	evs = e.expectEvents(&cursor, "an update withdrawing the verified email", store.EventUserUpdated)
	if len(evs) == 1 && (evs[0].User.ID != fay.User.ID || evs[0].User.Emails[0].Verified) {
		t.Errorf("user.updated snapshot = %+v", evs[0].User)
	}
}

func eventsUnlinkRecordsTheDeletionAndTheUsersChange(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	gus := e.signIn(store.SignIn{Account: account("gus", "gus@example.com", true)})
	x := e.signIn(store.SignIn{Account: account("gus-x", "", false), LinkToUser: gus.User.ID})
	cursor := lastEventID(e)
	if _, _, err := e.st.DeleteExternalAccount(ctx, gus.User.ID, x.Account.ID, nil); err != nil {
		t.Fatal(err)
	}
	evs := e.expectEvents(&cursor, "unlinking an account that vouched for nothing", store.EventAccountDeleted)
	if len(evs) == 1 && evs[0].Account.ID != x.Account.ID {
		t.Errorf("external_account.deleted is about %s, want %s", evs[0].Account.ID, x.Account.ID)
	}
	e.signIn(store.SignIn{Account: account("gus-gh", "", false), LinkToUser: gus.User.ID})
	e.newEvents(&cursor)
	if _, _, err := e.st.DeleteExternalAccount(ctx, gus.User.ID, gus.Account.ID, nil); err != nil {
		t.Fatal(err)
	}
	evs = e.expectEvents(&cursor, "unlinking the account that vouched for the email", store.EventAccountDeleted, store.EventUserUpdated)
	if len(evs) == 2 && (len(evs[1].Accounts) != 1 || evs[1].User.Emails[0].Verified) {
		t.Errorf("user.updated snapshot = %+v with %d accounts", evs[1].User, len(evs[1].Accounts))
	}
}

func eventsDeleteUserRecordsEachAccountThenTheUser(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	hal := e.signIn(store.SignIn{Account: account("hal", "hal@example.com", true)})
	gh := e.signIn(store.SignIn{Account: account("hal-gh", "", false), LinkToUser: hal.User.ID, Now: hal.Account.CreatedAt.Add(time.Second)})
	if err := e.st.CreateSession(ctx, &store.Session{UserID: hal.User.ID, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	cursor := lastEventID(e)
	if err := e.st.DeleteUser(ctx, hal.User.ID); err != nil {
		t.Fatal(err)
	}
	evs := e.expectEvents(&cursor, "deleting a user with two accounts and a session",
		store.EventAccountDeleted, store.EventAccountDeleted, store.EventUserDeleted)
	if len(evs) == 3 {
		got := []string{evs[0].Account.ID, evs[1].Account.ID}
		if !slices.Equal(got, []string{hal.Account.ID, gh.Account.ID}) {
			t.Errorf("deleted accounts %v, want %v (oldest first)", got, []string{hal.Account.ID, gh.Account.ID})
		}
		if u := evs[2].User; u == nil || u.ID != hal.User.ID || len(u.Emails) > 0 || len(evs[2].Accounts) > 0 {
			t.Errorf("user.deleted snapshot = %+v, want the id alone", u)
		}
	}
}

func eventsCarryNoTokenMaterial(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	ivy := e.signIn(store.SignIn{Account: account("ivy", "ivy@example.com", true)})
	e.signIn(store.SignIn{Account: account("ivy-gh", "ivy@work.example", true), LinkToUser: ivy.User.ID})
	if _, err := e.st.UpdateExternalAccount(ctx, ivy.Account.ID, func(a *store.ExternalAccount) error {
		a.Tokens = store.TokenSet{AccessToken: "at-secret", RefreshToken: "rt-secret", IDToken: "idt-secret"}
		a.Status = store.StatusNeedsReauthorization
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteUser(ctx, ivy.User.ID); err != nil {
		t.Fatal(err)
	}
	var cursor string
	evs := e.newEvents(&cursor)
	if len(evs) < 6 {
		t.Fatalf("only %d events: %q", len(evs), eventTypes(evs))
	}
	for _, ev := range evs {
		if j := jsonOf(t, ev); strings.Contains(j, "at-") || strings.Contains(j, "rt-") || strings.Contains(j, "idt-") {
			t.Errorf("%s event carries token material: %s", ev.Type, j)
		}
	}
}

func eventsPageAfterACursorInCommitOrder(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for i := range 12 {
		e.signIn(store.SignIn{Account: account(fmt.Sprint("page", i), "", false)})
	}
	var cursor string
	all := e.newEvents(&cursor)
	if len(all) != 24 {
		t.Fatalf("%d events, want 24", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].ID >= all[i].ID || all[i].CreatedAt.Before(all[i-1].CreatedAt) {
			t.Errorf("event %d (%s at %v) does not follow %s at %v", i, all[i].ID, all[i].CreatedAt, all[i-1].ID, all[i-1].CreatedAt)
		}
	}
	page, err := e.st.Events(ctx, all[4].ID, 3)
	if err != nil || len(page) != 3 || page[0].ID != all[5].ID || page[2].ID != all[7].ID {
		t.Errorf("Events(after the 5th, 3) = %q, %v; want the 6th to the 8th", eventTypes(page), err)
	}
	if page, err := e.st.Events(ctx, all[len(all)-1].ID, 10); err != nil || len(page) != 0 {
		t.Errorf("Events(after the last) = %d events, %v", len(page), err)
	}
	if page, err := e.st.Events(ctx, "", 0); err != nil || len(page) != 24 {
		t.Errorf("Events with the default limit = %d events, %v; want all 24", len(page), err)
	}
}

// eventsConcurrentWritersNeverCommitBehindAReader is the outbox's promise: a
// reader paging with a cursor while writers commit misses no event.
func eventsConcurrentWritersNeverCommitBehindAReader(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("jo", "", false)}).User
	const writers, each = 8, 15
	var wg sync.WaitGroup
	var written sync.Map
	for range writers {
		wg.Go(func() {
			for range each {
				s := &store.Session{UserID: u.ID, ExpiresAt: time.Now().Add(time.Hour)}
				if err := e.st.CreateSession(ctx, s); err != nil {
					t.Error(err)
					return
				}
				written.Store(s.ID, true)
			}
		})
	}
	var done atomic.Bool
	go func() { wg.Wait(); done.Store(true) }()
	seen := map[string]bool{}
	cursor := ""
	for finished := false; !finished; {
		finished = done.Load() // one more pass after the writers are done
		for _, ev := range e.newEvents(&cursor) {
			if ev.Type == store.EventSessionCreated {
				seen[ev.Session.ID] = true
			}
		}
	}
	n := 0
	written.Range(func(id, _ any) bool {
		n++
		if !seen[id.(string)] {
			t.Errorf("the reader never saw the session.created of a committed session")
		}
		return true
	})
	if n != writers*each || len(seen) != n {
		t.Errorf("wrote %d sessions, the reader saw %d", n, len(seen))
	}
}

func eventsDeleteBeforeKeepsTheRest(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for i := range 5 {
		e.signIn(store.SignIn{Account: account(fmt.Sprint("old", i), "", false)})
	}
	var cursor string
	all := e.newEvents(&cursor)
	if err := e.st.DeleteEventsBefore(ctx, all[6].ID); err != nil {
		t.Fatal(err)
	}
	var from string
	left := e.newEvents(&from)
	if len(left) != 4 || left[0].ID != all[6].ID {
		t.Errorf("after DeleteEventsBefore(the 7th) %d events are left starting at %v, want the last 4", len(left), left)
	}
	if err := e.st.DeleteEventsBefore(ctx, "evt_g"); err != nil { // after every id
		t.Fatal(err)
	}
	from = ""
	if left := e.newEvents(&from); len(left) != 0 {
		t.Errorf("%d events left after deleting all", len(left))
	}
	e.signIn(store.SignIn{Account: account("new", "", false)})
	if next := e.newEvents(&cursor); len(next) != 2 || next[0].ID <= all[len(all)-1].ID {
		t.Errorf("after deleting every event, new events %v do not follow the deleted ones", next)
	}
}

func metaPutGetReplace(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	if _, err := e.st.GetMeta(ctx, "webhook.app"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetMeta(missing) = %v, want ErrNotFound", err)
	}
	for _, v := range []string{`{"cursor":"a"}`, `{"cursor":"b"}`, ""} {
		if err := e.st.PutMeta(ctx, "webhook.app", []byte(v)); err != nil {
			t.Fatal(err)
		}
		if got, err := e.st.GetMeta(ctx, "webhook.app"); err != nil || string(got) != v {
			t.Errorf("GetMeta = %q, %v; want %q", got, err, v)
		}
	}
	if got, err := e.st.GetMeta(ctx, "webhook.other"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another name = %q, %v; want ErrNotFound", got, err)
	}
	for _, name := range []string{"", "a\x00b", strings.Repeat("n", 201)} {
		if err := e.st.PutMeta(ctx, name, []byte("x")); err == nil {
			t.Errorf("PutMeta(%q) succeeded", name)
		}
		if _, err := e.st.GetMeta(ctx, name); err == nil {
			t.Errorf("GetMeta(%q) succeeded", name)
		}
	}
}

// lastEventID returns the id of the newest event, "" when there is none.
func lastEventID(e *env) string {
	e.t.Helper()
	var cursor string
	e.newEvents(&cursor)
	return cursor
}
