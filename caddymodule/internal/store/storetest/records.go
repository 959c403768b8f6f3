package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func sessionCreateGetDelete(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	lena := e.signIn(store.SignIn{Account: account("lena", "lena@example.com", true)})
	u := lena.User
	s := &store.Session{UserID: u.ID, Email: u.PrimaryEmail(), Name: u.Name, ExpiresAt: e.clk.Now().Add(time.Hour),
		UserAgent: "Mozilla/5.0", IP: "192.0.2.1", AccountID: lena.Account.ID, ProviderSID: "op-session-1"}
	if err := e.st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.ID, "sess_") || s.CreatedAt.IsZero() {
		t.Errorf("CreateSession left id %q, created %v; want a sess_ id and a time", s.ID, s.CreatedAt)
	}
	got, err := e.st.Session(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if jsonOf(t, got) != jsonOf(t, s) {
		t.Errorf("Session = %s, want %s", jsonOf(t, got), jsonOf(t, s))
	}
	if list, err := e.st.Sessions(ctx, u.ID); err != nil || len(list) != 1 || jsonOf(t, list[0]) != jsonOf(t, s) {
		t.Errorf("Sessions = %v, %v", list, err)
	}
	if err := e.st.DeleteSession(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Session(ctx, s.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Session after delete = %v, want ErrNotFound", err)
	}
	if list, err := e.st.Sessions(ctx, u.ID); err != nil || len(list) != 0 {
		t.Errorf("Sessions after delete = %v, %v", list, err)
	}
	for _, id := range []string{s.ID, store.NewID("sess"), "", "a/b"} {
		if err := e.st.DeleteSession(ctx, id); err != nil {
			t.Errorf("DeleteSession(%q) of a missing session: %v", id, err)
		}
	}
}

func sessionErrorsNeverCarryTheID(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("leo", "", false)}).User
	s := &store.Session{UserID: u.ID, ExpiresAt: e.clk.Now().Add(time.Hour)}
	if err := e.st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	err := e.st.CreateSession(ctx, &store.Session{ID: s.ID, UserID: u.ID, ExpiresAt: s.ExpiresAt})
	if err == nil || strings.Contains(err.Error(), s.ID) {
		t.Errorf("CreateSession with a taken id = %v: want an error without the id", err)
	}
}

func sessionExpiresByTheClock(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("mia", "", false)}).User
	s := &store.Session{UserID: u.ID, ExpiresAt: e.clk.Now().Add(time.Hour)}
	if err := e.st.CreateSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Hour - time.Nanosecond)
	if _, err := e.st.Session(ctx, s.ID); err != nil {
		t.Errorf("Session a nanosecond before expiry: %v", err)
	}
	e.clk.Advance(time.Nanosecond)
	if _, err := e.st.Session(ctx, s.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Session at expiry = %v, want ErrNotFound", err)
	}
	if list, err := e.st.Sessions(ctx, u.ID); err != nil || len(list) != 0 {
		t.Errorf("Sessions at expiry = %v, %v", list, err)
	}
}

func sessionsListTheUsersLiveSessionsOldestFirst(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	nora := e.signIn(store.SignIn{Account: account("nora", "", false)}).User
	otto := e.signIn(store.SignIn{Account: account("otto", "", false)}).User
	var want []string
	for i, ttl := range []time.Duration{time.Hour, time.Minute, 2 * time.Hour} {
		// Created in reverse order of their ids' making.
		s := &store.Session{UserID: nora.ID, CreatedAt: e.clk.Now().Add(time.Duration(3-i) * time.Second), ExpiresAt: e.clk.Now().Add(ttl)}
		if err := e.st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
		if ttl > time.Minute {
			want = append([]string{s.ID}, want...)
		}
	}
	if err := e.st.CreateSession(ctx, &store.Session{UserID: otto.ID, ExpiresAt: e.clk.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	list, err := e.st.Sessions(ctx, nora.ID)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range list {
		got = append(got, s.ID)
	}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Sessions = %v, want %v", got, want)
	}
}

func createSessionRefusesBadSessions(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	u := e.signIn(store.SignIn{Account: account("pia", "", false)}).User
	live := e.clk.Now().Add(time.Hour)
	taken := &store.Session{UserID: u.ID, ExpiresAt: live}
	if err := e.st.CreateSession(ctx, taken); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		s        *store.Session
		notFound bool
	}{
		{"unknown user", &store.Session{UserID: store.NewID("user"), ExpiresAt: live}, true},
		{"no user", &store.Session{ExpiresAt: live}, true},
		{"already expired", &store.Session{UserID: u.ID, ExpiresAt: e.clk.Now()}, false},
		{"id in use", &store.Session{ID: taken.ID, UserID: u.ID, ExpiresAt: live}, false},
		{"id with a slash", &store.Session{ID: "sess_a/b", UserID: u.ID, ExpiresAt: live}, false},
		{"nil", nil, false},
	} {
		err := e.st.CreateSession(ctx, tc.s)
		if err == nil || errors.Is(err, store.ErrNotFound) != tc.notFound {
			t.Errorf("%s: CreateSession = %v, want an error (ErrNotFound: %v)", tc.name, err, tc.notFound)
		}
	}
	if list, err := e.st.Sessions(ctx, u.ID); err != nil || len(list) != 1 || list[0].ID != taken.ID {
		t.Errorf("Sessions = %v, %v; want only the first", list, err)
	}
}

func ephemeralTakeReturnsTheRecordOnce(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	if err := e.st.PutEphemeral(ctx, "flow", "state-1", []byte("pending"), time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := e.st.TakeEphemeral(ctx, "flow", "state-1")
	if err != nil || string(got) != "pending" {
		t.Fatalf("TakeEphemeral = %q, %v", got, err)
	}
	if _, err := e.st.TakeEphemeral(ctx, "flow", "state-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second TakeEphemeral = %v, want ErrNotFound", err)
	}
	for _, id := range []string{"missing", "", string(bytes.Repeat([]byte("x"), 10000))} {
		if _, err := e.st.TakeEphemeral(ctx, "flow", id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("TakeEphemeral(%.10q) = %v, want ErrNotFound", id, err)
		}
	}
	// Put again replaces; any bytes round-trip.
	value := []byte{0, 1, 2, 0xff, '\n'}
	for _, v := range [][]byte{[]byte("first"), value} {
		if err := e.st.PutEphemeral(ctx, "flow", "state-2", v, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := e.st.TakeEphemeral(ctx, "flow", "state-2"); err != nil || !bytes.Equal(got, value) {
		t.Errorf("TakeEphemeral after two puts = %q, %v; want %q", got, err, value)
	}
}

func ephemeralKindsAreSeparate(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	if err := e.st.PutEphemeral(ctx, "flow", "x", []byte("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.TakeEphemeral(ctx, "nonce", "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("taking another kind = %v, want ErrNotFound", err)
	}
	for _, kind := range []string{"", "a/b"} {
		if err := e.st.PutEphemeral(ctx, kind, "x", nil, time.Minute); err == nil {
			t.Errorf("PutEphemeral with kind %q succeeded", kind)
		}
	}
	if err := e.st.PutEphemeral(ctx, "flow", "x", nil, 0); err == nil {
		t.Error("PutEphemeral with ttl 0 succeeded")
	}
	if got, err := e.st.TakeEphemeral(ctx, "flow", "x"); err != nil || string(got) != "a" {
		t.Errorf("TakeEphemeral = %q, %v; want the record untouched by the refused puts", got, err)
	}
}

func ephemeralExpiresByTheClock(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	for _, id := range []string{"early", "late"} {
		if err := e.st.PutEphemeral(ctx, "nonce", id, []byte(id), 10*time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	e.clk.Advance(10*time.Minute - time.Nanosecond)
	if got, err := e.st.TakeEphemeral(ctx, "nonce", "early"); err != nil || string(got) != "early" {
		t.Errorf("TakeEphemeral just before expiry = %q, %v", got, err)
	}
	e.clk.Advance(time.Nanosecond)
	if _, err := e.st.TakeEphemeral(ctx, "nonce", "late"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TakeEphemeral at expiry = %v, want ErrNotFound", err)
	}
}

func ephemeralConcurrentTakersHaveOneWinner(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for round := range 5 {
		if err := e.st.PutEphemeral(ctx, "flow", "contested", []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var wins, notFound atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				_, err := e.st.TakeEphemeral(ctx, "flow", "contested")
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrNotFound):
					notFound.Add(1)
				default:
					t.Errorf("TakeEphemeral: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || notFound.Load() != 19 {
			t.Errorf("round %d: %d winners and %d not found, want 1 and 19", round, wins.Load(), notFound.Load())
		}
	}
}

func ephemeralCreateRefusesALiveRecord(t *testing.T, o opener) {
	e := o.env(t)
	e.needClock()
	ctx := context.Background()
	if err := e.st.CreateEphemeral(ctx, "jti", "token-1", []byte("first"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateEphemeral(ctx, "jti", "token-1", []byte("second"), time.Hour); !errors.Is(err, store.ErrExists) {
		t.Errorf("CreateEphemeral of a live record = %v, want ErrExists", err)
	}
	if err := e.st.CreateEphemeral(ctx, "flow", "token-1", []byte("other kind"), time.Minute); err != nil {
		t.Errorf("CreateEphemeral under another kind = %v", err)
	}
	if got, err := e.st.TakeEphemeral(ctx, "jti", "token-1"); err != nil || string(got) != "first" {
		t.Errorf("TakeEphemeral = %q, %v; want the first record, untouched", got, err)
	}
	// An expired record is no record: it may be created again.
	if err := e.st.CreateEphemeral(ctx, "jti", "token-2", []byte("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	if err := e.st.CreateEphemeral(ctx, "jti", "token-2", []byte("new"), time.Minute); err != nil {
		t.Errorf("CreateEphemeral over an expired record = %v", err)
	}
	if got, err := e.st.TakeEphemeral(ctx, "jti", "token-2"); err != nil || string(got) != "new" {
		t.Errorf("TakeEphemeral = %q, %v; want the new record", got, err)
	}
	for _, bad := range []struct{ kind, id string }{{"", "x"}, {"a/b", "x"}, {"jti", ""}, {"jti", strings.Repeat("x", 10000)}} {
		if err := e.st.CreateEphemeral(ctx, bad.kind, bad.id, nil, time.Minute); err == nil {
			t.Errorf("CreateEphemeral(%q, %.10q) succeeded", bad.kind, bad.id)
		}
	}
}

func ephemeralConcurrentCreatorsHaveOneWinner(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for round := range 5 {
		id := fmt.Sprint("contested-", round)
		var wins, exists atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				err := e.st.CreateEphemeral(ctx, "jti", id, nil, time.Minute)
				switch {
				case err == nil:
					wins.Add(1)
				case errors.Is(err, store.ErrExists):
					exists.Add(1)
				default:
					t.Errorf("CreateEphemeral: %v", err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 || exists.Load() != 19 {
			t.Errorf("round %d: %d creators and %d refused, want 1 and 19", round, wins.Load(), exists.Load())
		}
	}
}

func readsOfUnknownOrMalformedIDsAreNotFound(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	for _, id := range []string{"", "user_nope", "user/x", "a\x00b", strings.Repeat("x", 10000)} {
		if _, err := e.st.User(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("User(%.10q) = %v, want ErrNotFound", id, err)
		}
		if _, err := e.st.Session(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Session(%.10q) = %v, want ErrNotFound", id, err)
		}
		if accs, err := e.st.ExternalAccounts(ctx, id); err != nil || len(accs) != 0 {
			t.Errorf("ExternalAccounts(%.10q) = %v, %v", id, accs, err)
		}
		if list, err := e.st.Sessions(ctx, id); err != nil || len(list) != 0 {
			t.Errorf("Sessions(%.10q) = %v, %v", id, list, err)
		}
		if _, err := e.st.RedirectURL(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RedirectURL(%.10q) = %v, want ErrNotFound", id, err)
		}
	}
}

func closeIsIdempotent(t *testing.T, o opener) {
	e := o.env(t)
	for range 3 {
		if err := e.st.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	if _, err := e.st.User(context.Background(), store.NewID("user")); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Errorf("User after Close = %v, want an error other than ErrNotFound", err)
	}
}
