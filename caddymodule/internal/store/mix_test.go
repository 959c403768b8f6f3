package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestCheck_StaysCleanAfterRandomOperations drives the store through a
// seeded random mix of every writing method and checks its invariants along
// the way. A failure names the seed and the step to replay.
func TestCheck_StaysCleanAfterRandomOperations(t *testing.T) {
	const seed, steps = 20240611, 200
	eachBackend(t, func(t *testing.T, b *Badger, clk *fakeClock) {
		ctx := context.Background()
		rng := rand.New(rand.NewPCG(seed, 0))
		emails := []string{"a@example.com", "A@example.com", "b@example.com", "c@example.com", ""}
		var subjects, sessions []string
		pick := func(list []string) string { return list[rng.IntN(len(list))] }
		randomAccount := func(subject string) ExternalAccount {
			return account(subject, pick(emails), rng.IntN(2) == 0)
		}
		randomUser := func() (*User, bool) {
			users, _, err := b.Users(ctx, UserQuery{Limit: maxUsersLimit})
			if err != nil {
				t.Fatal(err)
			}
			if len(users) == 0 {
				return nil, false
			}
			return users[rng.IntN(len(users))], true
		}
		randomAccountOf := func() (*ExternalAccount, bool) {
			u, ok := randomUser()
			if !ok {
				return nil, false
			}
			accs, err := b.ExternalAccounts(ctx, u.ID)
			if err != nil || len(accs) == 0 {
				t.Fatalf("user %s has accounts %v, %v", u.ID, accs, err)
			}
			return accs[rng.IntN(len(accs))], true
		}
		counts := map[string]int{}
		for step := range steps {
			clk.Advance(time.Duration(rng.IntN(5000)) * time.Millisecond)
			var op string
			var err error
			switch r := rng.IntN(100); {
			case r < 20 || len(subjects) == 0:
				op = "sign in new"
				s := fmt.Sprint("s", step)
				subjects = append(subjects, s)
				_, err = b.SignIn(ctx, SignIn{Account: randomAccount(s), LinkByVerifiedEmail: rng.IntN(2) == 0, Now: clk.Now()})
			case r < 35:
				op = "sign in known"
				_, err = b.SignIn(ctx, SignIn{Account: randomAccount(pick(subjects)), Now: clk.Now()})
			case r < 45:
				op = "link"
				if u, ok := randomUser(); ok {
					s := pick(append(subjects, fmt.Sprint("s", step)))
					subjects = append(subjects, s)
					_, err = b.SignIn(ctx, SignIn{Account: randomAccount(s), LinkToUser: u.ID, Now: clk.Now()})
					if errors.Is(err, ErrIdentityTaken) {
						err = nil
					}
				}
			case r < 60:
				op = "update"
				if a, ok := randomAccountOf(); ok {
					email, verified, stale := pick(emails), rng.IntN(2) == 0, rng.IntN(4) == 0
					_, err = b.UpdateExternalAccount(ctx, a.ID, func(a *ExternalAccount) error {
						if stale {
							return ErrStale
						}
						a.Email, a.EmailVerified = email, verified
						a.Tokens.AccessToken = fmt.Sprint("at", step)
						return nil
					})
					if errors.Is(err, ErrStale) {
						err = nil
					}
				}
			case r < 70:
				op = "unlink"
				if a, ok := randomAccountOf(); ok {
					_, err = b.DeleteExternalAccount(ctx, a.UserID, a.ID, refuseLast)
					if errors.Is(err, errLastAccount) {
						err = nil
					}
				}
			case r < 76:
				op = "delete user"
				if u, ok := randomUser(); ok {
					err = b.DeleteUser(ctx, u.ID)
				}
			case r < 90:
				op = "create session"
				if u, ok := randomUser(); ok {
					s := &Session{UserID: u.ID, ExpiresAt: clk.Now().Add(time.Hour)}
					if err = b.CreateSession(ctx, s); err == nil {
						sessions = append(sessions, s.ID)
					}
				}
			default:
				op = "delete session"
				if len(sessions) > 0 {
					err = b.DeleteSession(ctx, pick(sessions))
				}
			}
			if err != nil {
				t.Fatalf("seed %d step %d (%s): %v", seed, step, op, err)
			}
			counts[op]++
			if step%20 == 19 || step == steps-1 {
				if problems, err := b.Check(ctx); err != nil || len(problems) > 0 {
					t.Fatalf("seed %d after step %d (%s): Check = %q, %v", seed, step, op, problems, err)
				}
			}
		}
		if len(counts) != 8 {
			t.Errorf("operations run: %v, want all 8 kinds", counts)
		}
		_, total, err := b.Users(ctx, UserQuery{})
		t.Logf("operations %v; %d users at the end (%v)", counts, total, err)
	})
}
