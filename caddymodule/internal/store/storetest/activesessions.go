package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// expectActive fails the test unless ActiveSessions is want.
func (e *env) expectActive(want int, when string) {
	e.t.Helper()
	n, err := e.st.ActiveSessions(context.Background())
	if err != nil || n != want {
		e.t.Errorf("%s: ActiveSessions = %d, %v; want %d", when, n, err, want)
	}
}

// ActiveSessions follows every way a session starts, moves and ends: a
// sign-out, a revocation, a touch across hours, a ban, an unlink, a
// user's deletion, and the clock (a session counts until the end of the
// hour it expires in).
func activeSessionsFollowEveryChange(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	e.expectActive(0, "an empty store")
	ada := e.signIn(store.SignIn{Account: account("ada", "", false), Now: e.clk.Now()})
	e.clk.Advance(time.Second) // ada's first account is "ada"
	home := e.signIn(store.SignIn{LinkToUser: ada.User.ID, Account: account("ada-home", "", false), Now: e.clk.Now()})
	bob := e.signIn(store.SignIn{Account: account("bob", "", false), Now: e.clk.Now()}).User.ID
	cy := e.signIn(store.SignIn{Account: account("cy", "", false), Now: e.clk.Now()}).User.ID
	var adas []*store.Session
	for range 3 {
		adas = append(adas, e.newSession(ada.User.ID, 2*time.Hour))
	}
	throughHome := &store.Session{UserID: ada.User.ID, AccountID: home.Account.ID, CreatedAt: e.clk.Now(), ExpiresAt: e.clk.Now().Add(48 * time.Hour)}
	if err := e.st.CreateSession(ctx, throughHome); err != nil {
		t.Fatal(err)
	}
	bobs := e.newSession(bob, 48*time.Hour)
	e.newSession(bob, 48*time.Hour)
	e.newSession(cy, 48*time.Hour)
	e.expectActive(7, "seven sessions")
	if err := e.st.DeleteSession(ctx, adas[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.DeleteSession(ctx, adas[0].ID); err != nil {
		t.Fatal(err)
	}
	e.expectActive(6, "after a sign-out, twice")
	if err := e.st.RevokeSession(ctx, bobs.ID); err != nil {
		t.Fatal(err)
	}
	e.expectActive(5, "after a revocation")
	// adas[1] moves ten hours on, adas[2] a minute: counted once each.
	now := e.clk.Now()
	err := e.st.TouchSessions(ctx, []store.SessionTouch{{ID: adas[1].ID, At: now, ExpiresAt: now.Add(12 * time.Hour)},
		{ID: adas[2].ID, At: now, ExpiresAt: adas[2].ExpiresAt.Add(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	e.expectActive(5, "after touches")
	if _, _, err := e.st.DeleteExternalAccount(ctx, ada.User.ID, home.Account.ID, nil); err != nil {
		t.Fatal(err)
	}
	e.expectActive(4, "after an unlink ends the session signed in through the account")
	if _, err := e.st.UpdateUser(ctx, bob, func(u *store.User) error { u.Banned = true; return nil }); err != nil {
		t.Fatal(err)
	}
	e.expectActive(3, "after a ban")
	// Four hours on, adas[2] (two hours and a minute) has expired and its
	// hour is over; adas[1] (touched to twelve hours) has not.
	e.clk.Advance(4 * time.Hour)
	e.expectActive(2, "four hours on")
	if err := e.st.DeleteUser(ctx, ada.User.ID); err != nil {
		t.Fatal(err)
	}
	e.expectActive(1, "after a user's deletion")
	e.clk.Advance(49 * time.Hour)
	e.expectActive(0, "after every session expired")
}
