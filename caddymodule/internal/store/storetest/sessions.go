package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// newSession creates a live session of userID expiring after ttl, signed
// in through the user's first account.
func (e *env) newSession(userID string, ttl time.Duration) *store.Session {
	e.t.Helper()
	now := e.clk.Now()
	accounts, err := e.st.ExternalAccounts(context.Background(), userID)
	if err != nil || len(accounts) == 0 {
		e.t.Fatalf("ExternalAccounts(%s) = %v, %v", userID, accounts, err)
	}
	s := &store.Session{UserID: userID, CreatedAt: now, LastActiveAt: now, ExpiresAt: now.Add(ttl),
		AccountID: accounts[0].ID, AuthTime: now}
	if err := e.st.CreateSession(context.Background(), s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// sessionRecord reads a session, nil when it is not found.
func (e *env) sessionRecord(id string) *store.Session {
	e.t.Helper()
	s, err := e.st.Session(context.Background(), id)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

func touchSessionsMovesActivityAndExpiryOnlyForward(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("tia", "", false)}).User
	s := e.newSession(u.ID, time.Hour)
	if got := e.sessionRecord(s.ID); jsonOf(t, got) != jsonOf(t, s) {
		t.Fatalf("Session = %s, want %s (last_active_at, account_id and auth_time kept)", jsonOf(t, got), jsonOf(t, s))
	}
	cursor := lastEventID(e)
	t0 := e.clk.Now()
	used := store.SessionTouch{ID: s.ID, At: t0.Add(10 * time.Minute), ExpiresAt: t0.Add(2 * time.Hour)}
	stale := store.SessionTouch{ID: s.ID, At: t0.Add(5 * time.Minute), ExpiresAt: t0.Add(90 * time.Minute)}
	for _, batch := range [][]store.SessionTouch{{used}, {stale}, {stale, used, stale}} {
		if err := e.st.TouchSessions(ctx, batch); err != nil {
			t.Fatal(err)
		}
		got := e.sessionRecord(s.ID)
		if got == nil || !got.LastActiveAt.Equal(used.At) || !got.ExpiresAt.Equal(used.ExpiresAt) {
			t.Fatalf("after touches the session is %+v; want last active %v, expiring %v", got, used.At, used.ExpiresAt)
		}
		if got.AuthTime.IsZero() || got.AccountID != s.AccountID || got.AccountID == "" || got.UserID != u.ID {
			t.Errorf("a touch changed more than activity and expiry: %+v", got)
		}
	}
	if list, err := e.st.Sessions(ctx, u.ID); err != nil || len(list) != 1 || !list[0].ExpiresAt.Equal(used.ExpiresAt) {
		t.Errorf("Sessions = %v, %v; want the touched session", list, err)
	}
	e.expectEvents(&cursor, "touching a session")
	// Past the first expiry, the touched one holds; past the touched one, gone.
	e.clk.Advance(90 * time.Minute)
	if e.sessionRecord(s.ID) == nil {
		t.Fatal("a session touched to expire later ended at its first expiry")
	}
	e.clk.Advance(30 * time.Minute)
	if e.sessionRecord(s.ID) != nil {
		t.Fatal("a session outlived the expiry its last touch gave it")
	}
	// Never past its absolute end, however late a touch says.
	capped := &store.Session{UserID: u.ID, ExpiresAt: e.clk.Now().Add(time.Hour), AbandonAt: e.clk.Now().Add(90 * time.Minute)}
	if err := e.st.CreateSession(ctx, capped); err != nil {
		t.Fatal(err)
	}
	if err := e.st.TouchSessions(ctx, []store.SessionTouch{{ID: capped.ID, At: e.clk.Now(), ExpiresAt: e.clk.Now().Add(5 * time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	if got := e.sessionRecord(capped.ID); got == nil || !got.ExpiresAt.Equal(capped.AbandonAt) {
		t.Errorf("a touch past the session's absolute end left it expiring %v, want %v", got, capped.AbandonAt)
	}
	e.checkClean()
}

func touchSessionsNeverRevives(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("uma", "", false)}).User
	deleted, expired, revoked, live := e.newSession(u.ID, time.Hour), e.newSession(u.ID, time.Minute), e.newSession(u.ID, time.Hour), e.newSession(u.ID, time.Hour)
	if err := e.st.DeleteSession(ctx, deleted.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.RevokeSession(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	later := e.clk.Now().Add(time.Hour)
	var touches []store.SessionTouch
	for _, id := range []string{deleted.ID, expired.ID, revoked.ID, live.ID, store.NewID("sess"), "", "a/b", "sess_\x00"} {
		touches = append(touches, store.SessionTouch{ID: id, At: e.clk.Now(), ExpiresAt: later})
	}
	if err := e.st.TouchSessions(ctx, touches); err != nil {
		t.Fatalf("TouchSessions with missing, ended and malformed ids: %v", err)
	}
	for name, id := range map[string]string{"deleted": deleted.ID, "expired": expired.ID, "revoked": revoked.ID} {
		if e.sessionRecord(id) != nil {
			t.Errorf("a touch revived the %s session", name)
		}
	}
	if got := e.sessionRecord(live.ID); got == nil || !got.ExpiresAt.Equal(later) {
		t.Errorf("the live session beside them = %+v, want it touched", got)
	}
	if list, err := e.st.Sessions(ctx, u.ID); err != nil || len(list) != 1 || list[0].ID != live.ID {
		t.Errorf("Sessions = %v, %v; want only the live one", list, err)
	}
	if err := e.st.TouchSessions(ctx, nil); err != nil {
		t.Errorf("TouchSessions(nil) = %v", err)
	}
	// A user deleted while gateways still touch its sessions keeps none.
	if err := e.st.DeleteUser(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.st.TouchSessions(ctx, touches); err != nil {
		t.Fatal(err)
	}
	if e.sessionRecord(live.ID) != nil {
		t.Error("a touch revived a deleted user's session")
	}
	e.checkClean()
}

func touchSessionsConcurrentGatewaysKeepTheLatest(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("vic", "", false)}).User
	var sessions []*store.Session
	for range 40 {
		sessions = append(sessions, e.newSession(u.ID, time.Hour))
	}
	t0 := e.clk.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 { // gateways, each flushing every session in its own order
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []store.SessionTouch
			for i := range sessions {
				s := sessions[(i*7+g*13)%len(sessions)] // a permutation: 7 is prime to 40
				batch = append(batch, store.SessionTouch{ID: s.ID, At: t0.Add(time.Duration(g) * time.Second),
					ExpiresAt: t0.Add(time.Hour + time.Duration(g)*time.Minute)})
			}
			if err := e.st.TouchSessions(ctx, batch); err != nil {
				errs <- fmt.Errorf("gateway %d: %w", g, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, s := range sessions {
		got := e.sessionRecord(s.ID)
		if got == nil || !got.LastActiveAt.Equal(t0.Add(7*time.Second)) || !got.ExpiresAt.Equal(t0.Add(time.Hour+7*time.Minute)) {
			t.Fatalf("after concurrent touches a session is %+v, want the latest touch", got)
		}
	}
	e.checkClean()
}
