package postgres

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

var newKey = bytes.Repeat([]byte{9}, 32)

// sealedUnder is a store on the old key with a user (tokens), a session,
// their events and a pending sign-in.
type sealedUnder struct {
	dsn       string
	account   string
	sessionID string
}

func seedOldKey(t *testing.T) sealedUnder {
	t.Helper()
	dsn := freshDSN(t)
	s := openDSN(t, dsn, Options{})
	acc := signInOne(t, s, "ada")
	sess := &store.Session{UserID: acc.UserID, ExpiresAt: time.Now().Add(time.Hour)}
	ctx := context.Background()
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.PutEphemeral(ctx, "flow", "state-1", []byte("pending"), time.Minute); err != nil {
		t.Fatal(err)
	}
	s.Close()
	return sealedUnder{dsn: dsn, account: acc.ID, sessionID: sess.ID}
}

// readsEverything fails t unless s opens the tokens, the session and the
// events of seed.
func (seed sealedUnder) readsEverything(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	acc, err := s.ExternalAccount(ctx, seed.account)
	if err != nil || acc.Tokens.RefreshToken != "rt-0" {
		t.Fatalf("tokens: %+v, %v", acc, err)
	}
	if _, err := s.Session(ctx, seed.sessionID); err != nil {
		t.Fatalf("session: %v", err)
	}
	if events, err := s.Events(ctx, "", 100); err != nil || len(events) < 2 {
		t.Fatalf("events: %d, %v", len(events), err)
	}
}

func TestRekey_MovesEverythingToTheNewKey(t *testing.T) {
	seed := seedOldKey(t)
	ctx := context.Background()

	// Side by side: the new key seals, the old one still opens.
	both := openDSN(t, seed.dsn, Options{EncryptionKey: newKey, PreviousEncryptionKeys: [][]byte{testKey}})
	seed.readsEverything(t, both)
	if _, err := Open(ctx, Options{DSN: seed.dsn, EncryptionKey: newKey}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("the new key alone before the rekey: %v, want ErrWrongKey", err)
	}

	rotated := time.Now()
	res, err := both.Rekey(ctx, RekeyOptions{SessionsBefore: rotated})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Done || res.Resealed["external_accounts"] != 1 || res.Resealed["sessions"] != 1 || res.Resealed["events"] < 2 || len(res.Unreadable) != 0 {
		t.Fatalf("first run: %+v", res)
	}
	if res.InFlight != 1 || res.InFlightUntil.Before(time.Now()) || res.SessionsBefore != 1 || res.SessionsBeforeUntil.Before(time.Now()) {
		t.Errorf("what is left behind: %+v", res)
	}
	// Running it again finds nothing to do: it can be resumed at any point.
	again, err := both.Rekey(ctx, RekeyOptions{})
	if err != nil || !again.Done || len(again.Resealed) != 0 {
		t.Fatalf("second run: %+v, %v", again, err)
	}

	alone := openDSN(t, seed.dsn, Options{EncryptionKey: newKey})
	seed.readsEverything(t, alone)
	if _, err := Open(ctx, Options{DSN: seed.dsn, EncryptionKey: testKey}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("the old key alone after the rekey: %v, want ErrWrongKey", err)
	}
	if problems, err := alone.Check(ctx); err != nil || len(problems) > 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}

// A gateway still sealing under the old key (it runs the old secret first)
// writes after a rekey: the next run finds and moves its value.
func TestRekey_ResumesOverValuesWrittenUnderTheOldKeyMeanwhile(t *testing.T) {
	seed := seedOldKey(t)
	ctx := context.Background()
	stale := openDSN(t, seed.dsn, Options{EncryptionKey: testKey, PreviousEncryptionKeys: [][]byte{newKey}})
	both := openDSN(t, seed.dsn, Options{EncryptionKey: newKey, PreviousEncryptionKeys: [][]byte{testKey}})
	if res, err := both.Rekey(ctx, RekeyOptions{}); err != nil || !res.Done {
		t.Fatalf("%+v, %v", res, err)
	}
	late := signInOne(t, stale, "grace")
	res, err := both.Rekey(ctx, RekeyOptions{})
	if err != nil || !res.Done || res.Resealed["external_accounts"] != 1 {
		t.Fatalf("%+v, %v", res, err)
	}
	alone := openDSN(t, seed.dsn, Options{EncryptionKey: newKey})
	if acc, err := alone.ExternalAccount(ctx, late.ID); err != nil || acc.Tokens.AccessToken != "at-0" {
		t.Fatalf("%+v, %v", acc, err)
	}
}

// A value sealed under a key the rekey was not given (a forgotten older
// secret) is reported, and the database keeps needing the previous key.
func TestRekey_UnreadableValuesKeepThePreviousKeyNeeded(t *testing.T) {
	seed := seedOldKey(t)
	ctx := context.Background()
	forgotten, err := newSealer(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	both := openDSN(t, seed.dsn, Options{EncryptionKey: newKey, PreviousEncryptionKeys: [][]byte{testKey}})
	exec(t, both, `UPDATE external_accounts SET tokens = $1 WHERE id = $2`, forgotten.seal([]byte(`{}`), tokensAAD(seed.account)), seed.account)
	res, err := both.Rekey(ctx, RekeyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done || res.Unreadable["external_accounts"] != 1 || res.Resealed["sessions"] != 1 {
		t.Fatalf("%+v", res)
	}
	if _, err := Open(ctx, Options{DSN: seed.dsn, EncryptionKey: newKey}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("the new key alone: %v, want ErrWrongKey while a value is unreadable", err)
	}
}

func TestSealer_OpensUnderEveryKeyAndSealsUnderTheFirst(t *testing.T) {
	old, _ := newSealer(testKey)
	both, err := newSealer(newKey, testKey)
	if err != nil {
		t.Fatal(err)
	}
	onlyNew, _ := newSealer(newKey)
	sealed := old.seal([]byte("v"), "a")
	for name, s := range map[string]sealer{"old": old, "both": both} {
		if got, err := s.open(sealed, "a"); err != nil || string(got) != "v" {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	if _, err := onlyNew.open(sealed, "a"); err == nil {
		t.Error("the new key alone opens a value of the old one")
	}
	fresh, changed, err := both.reseal(sealed, "a")
	if err != nil || !changed {
		t.Fatalf("reseal: %v %v", changed, err)
	}
	if got, err := onlyNew.open(fresh, "a"); err != nil || string(got) != "v" {
		t.Errorf("resealed: %q, %v", got, err)
	}
	if _, changed, _ := both.reseal(fresh, "a"); changed {
		t.Error("a value under the current key is sealed again")
	}
	if _, _, err := both.reseal(fresh, "b"); err == nil {
		t.Error("a value moved to another place reseals")
	}
	if _, err := newSealer(newKey, []byte("short")); err == nil || !bytes.Contains([]byte(err.Error()), []byte("key 2")) {
		t.Errorf("a short previous key: %v", err)
	}
}
