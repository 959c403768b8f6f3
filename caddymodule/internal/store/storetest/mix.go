package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// checkStaysCleanAfterRandomOperations drives the store through a seeded
// random mix of every writing method and checks its invariants along the
// way (where the store has a Check). A failure names the seed and the step
// to replay.
func checkStaysCleanAfterRandomOperations(t *testing.T, o opener) {
	const seed, steps = 20240611, 200
	e := o.env(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(seed, 0))
	emails := []string{"a@example.com", "A@example.com", "b@example.com", "c@example.com", ""}
	var subjects, sessions []string
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	randomAccount := func(subject string) store.ExternalAccount {
		return account(subject, pick(emails), rng.IntN(2) == 0)
	}
	randomUser := func() (*store.User, bool) {
		users, _, err := e.st.Users(ctx, store.UserQuery{Limit: 500})
		if err != nil {
			t.Fatal(err)
		}
		if len(users) == 0 {
			return nil, false
		}
		return users[rng.IntN(len(users))], true
	}
	randomAccountOf := func() (*store.ExternalAccount, bool) {
		u, ok := randomUser()
		if !ok {
			return nil, false
		}
		accs, err := e.st.ExternalAccounts(ctx, u.ID)
		if err != nil || len(accs) == 0 {
			t.Fatalf("user %s has accounts %v, %v", u.ID, accs, err)
		}
		return accs[rng.IntN(len(accs))], true
	}
	counts := map[string]int{}
	for step := range steps {
		e.clk.Advance(time.Duration(rng.IntN(5000)) * time.Millisecond)
		var op string
		var err error
		switch r := rng.IntN(100); {
		case r < 20 || len(subjects) == 0:
			op = "sign in new"
			s := fmt.Sprint("s", step)
			subjects = append(subjects, s)
			in := store.SignIn{Account: randomAccount(s), Now: e.clk.Now()}
			if rng.IntN(4) == 0 {
				in.Account.Provider = "untrusted"
			}
			if rng.IntN(2) == 0 {
				in.LinkByEmail = trusting("test")
			}
			if _, err = e.st.SignIn(ctx, in); errors.Is(err, store.ErrEmailHeld) {
				err, subjects = nil, subjects[:len(subjects)-1]
			}
		case r < 35:
			op = "sign in known"
			_, err = e.st.SignIn(ctx, store.SignIn{Account: randomAccount(pick(subjects)), Now: e.clk.Now()})
		case r < 45:
			op = "link"
			if u, ok := randomUser(); ok {
				s := pick(append(subjects, fmt.Sprint("s", step)))
				subjects = append(subjects, s)
				_, err = e.st.SignIn(ctx, store.SignIn{Account: randomAccount(s), LinkToUser: u.ID, Now: e.clk.Now()})
				if errors.Is(err, store.ErrIdentityTaken) {
					err = nil
				}
			}
		case r < 60:
			op = "update"
			if a, ok := randomAccountOf(); ok {
				email, verified, stale := pick(emails), rng.IntN(2) == 0, rng.IntN(4) == 0
				_, err = e.st.UpdateExternalAccount(ctx, a.ID, func(a *store.ExternalAccount) error {
					if stale {
						return store.ErrStale
					}
					a.Email, a.EmailVerified = email, verified
					a.Tokens.AccessToken = fmt.Sprint("at", step)
					return nil
				})
				if errors.Is(err, store.ErrStale) {
					err = nil
				}
			}
		case r < 70:
			op = "unlink"
			if a, ok := randomAccountOf(); ok {
				_, _, err = e.st.DeleteExternalAccount(ctx, a.UserID, a.ID, refuseLast)
				if errors.Is(err, errLastAccount) {
					err = nil
				}
			}
		case r < 76:
			op = "delete user"
			if u, ok := randomUser(); ok {
				err = e.st.DeleteUser(ctx, u.ID)
			}
		case r < 90:
			op = "create session"
			if u, ok := randomUser(); ok {
				s := &store.Session{UserID: u.ID, ExpiresAt: e.clk.Now().Add(time.Hour)}
				if err = e.st.CreateSession(ctx, s); err == nil {
					sessions = append(sessions, s.ID)
				}
			}
		default:
			op = "delete session"
			if len(sessions) > 0 {
				err = e.st.DeleteSession(ctx, pick(sessions))
			}
		}
		if err != nil {
			t.Fatalf("seed %d step %d (%s): %v", seed, step, op, err)
		}
		counts[op]++
		if step%20 == 19 || step == steps-1 {
			if c, ok := store.Unwrap(e.st).(checker); ok {
				if problems, err := c.Check(ctx); err != nil || len(problems) > 0 {
					t.Fatalf("seed %d after step %d (%s): Check = %q, %v", seed, step, op, problems, err)
				}
			}
		}
	}
	if len(counts) != 8 {
		t.Errorf("operations run: %v, want all 8 kinds", counts)
	}
}
