package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// sessionThrough starts a live session of the user signed in through the
// account accountID ("" for a session that does not record it).
func (e *env) sessionThrough(userID, accountID string) (*store.Session, error) {
	s := &store.Session{UserID: userID, AccountID: accountID, ExpiresAt: e.clk.Now().Add(time.Hour)}
	return s, e.st.CreateSession(context.Background(), s)
}

// deleteAccountEndsTheSessionsSignedInThroughIt: whoever signed in with an
// identity the user removes keeps nothing of the account; the user's other
// sessions go on.
func deleteAccountEndsTheSessionsSignedInThroughIt(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	a := e.signIn(store.SignIn{Account: accountAt("google", "kai", "", false)})
	b := e.signIn(store.SignIn{Account: accountAt("github", "kai", "", false), LinkToUser: a.User.ID})
	start := func(accountID string) *store.Session {
		t.Helper()
		s, err := e.sessionThrough(a.User.ID, accountID)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	throughA, throughA2, throughB, unknown := start(a.Account.ID), start(a.Account.ID), start(b.Account.ID), start("")

	refused := errors.New("refused")
	if _, revoked, err := e.st.DeleteExternalAccount(ctx, a.User.ID, a.Account.ID, func([]*store.ExternalAccount) error { return refused }); err != refused || len(revoked) > 0 || !e.live(throughA.ID) {
		t.Fatalf("a refused unlink: %v, revoked %q, session live %v", err, revoked, e.live(throughA.ID))
	}
	cursor := lastEventID(e)
	gone, revoked, err := e.st.DeleteExternalAccount(ctx, a.User.ID, a.Account.ID, nil)
	if err != nil || gone.ID != a.Account.ID {
		t.Fatalf("DeleteExternalAccount = %v, %v", gone, err)
	}
	if want := []string{throughA.ID, throughA2.ID}; !slices.Equal(slices.Sorted(slices.Values(revoked)), slices.Sorted(slices.Values(want))) {
		t.Errorf("revoked %q, want the two sessions signed in through the account %q", revoked, want)
	}
	for _, s := range []*store.Session{throughA, throughA2} {
		if e.live(s.ID) {
			t.Error("a session signed in through the unlinked account is live")
		}
	}
	if !e.live(throughB.ID) || !e.live(unknown.ID) {
		t.Errorf("the other sessions: through the other account live %v, without a recorded account live %v; want both", e.live(throughB.ID), e.live(unknown.ID))
	}
	evs := e.expectEvents(&cursor, "an unlink ending two sessions", store.EventSessionRevoked, store.EventSessionRevoked, store.EventAccountDeleted)
	for _, ev := range evs[:min(2, len(evs))] {
		if ev.Session == nil || !slices.Contains(revoked, ev.Session.ID) {
			t.Errorf("session.revoked is about %+v, want one of %q", ev.Session, revoked)
		}
	}

	// No session starts through an account its user no longer has, nor
	// through another user's.
	if _, err := e.sessionThrough(a.User.ID, a.Account.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a session through the unlinked account: %v, want ErrNotFound", err)
	}
	other := e.signIn(store.SignIn{Account: accountAt("google", "someone", "", false)})
	if _, err := e.sessionThrough(a.User.ID, other.Account.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a session through another user's account: %v, want ErrNotFound", err)
	}
	e.checkClean()
}

// deleteAccountConcurrentWithASignInLeavesNoSessionThroughIt: a session
// started through an account while it is being unlinked is either refused
// or ended by the unlink, never left live.
func deleteAccountConcurrentWithASignInLeavesNoSessionThroughIt(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	owner := e.signIn(store.SignIn{Account: accountAt("google", "kim", "", false)})
	for i := range 20 {
		acc := e.signIn(store.SignIn{Account: accountAt("github", "kim-"+string(rune('a'+i)), "", false), LinkToUser: owner.User.ID}).Account
		var wg sync.WaitGroup
		var s *store.Session
		var createErr, unlinkErr error
		wg.Go(func() { s, createErr = e.sessionThrough(owner.User.ID, acc.ID) })
		wg.Go(func() { _, _, unlinkErr = e.st.DeleteExternalAccount(ctx, owner.User.ID, acc.ID, nil) })
		wg.Wait()
		if unlinkErr != nil {
			t.Fatal(unlinkErr)
		}
		if createErr != nil && !errors.Is(createErr, store.ErrNotFound) {
			t.Fatal(createErr)
		}
		if createErr == nil && e.live(s.ID) {
			t.Fatalf("round %d: a session started through the account as it was unlinked is live", i)
		}
	}
	e.checkClean()
}
