package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// healthy holds two users, rose with two accounts (a verified and an
// unverified address) and a session, and sam.
type healthy struct {
	s          *Store
	rose, sam  store.SignInResult
	roseGH     *store.ExternalAccount
	roseSessID string
}

func newHealthy(t *testing.T) healthy {
	t.Helper()
	s := openDSN(t, freshDSN(t), Options{})
	ctx := context.Background()
	acc := func(sub, email string, verified bool) store.ExternalAccount {
		return store.ExternalAccount{Provider: "p", Issuer: "https://i.example", Subject: sub, Email: email, EmailVerified: verified,
			Tokens: store.TokenSet{AccessToken: "at-" + sub}}
	}
	h := healthy{s: s}
	var err error
	if h.rose, err = s.SignIn(ctx, store.SignIn{Account: acc("rose", "rose@example.com", true)}); err != nil {
		t.Fatal(err)
	}
	gh, err := s.SignIn(ctx, store.SignIn{Account: acc("rose-gh", "rose@work.example", false), LinkToUser: h.rose.User.ID})
	if err != nil {
		t.Fatal(err)
	}
	h.roseGH = gh.Account
	if h.sam, err = s.SignIn(ctx, store.SignIn{Account: acc("sam", "sam@example.com", true)}); err != nil {
		t.Fatal(err)
	}
	sess := &store.Session{UserID: h.rose.User.ID, ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	h.roseSessID = sess.ID
	if _, err := s.CreateRedirectURL(ctx, "myapp://cb"); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestCheck_HealthyStoreIsClean(t *testing.T) {
	h := newHealthy(t)
	if problems, err := h.s.Check(context.Background()); err != nil || len(problems) != 0 {
		t.Errorf("Check = %q, %v; want none", problems, err)
	}
}

// TestCheck_ReportsEachKindOfViolation corrupts the records in every way the
// schema's constraints allow and expects one line for each.
func TestCheck_ReportsEachKindOfViolation(t *testing.T) {
	for _, tc := range []struct {
		name    string
		corrupt string // SQL; $1 is rose's id, $2 sam's, $3 rose's GitHub account's, $4 sam's account's
		want    []string
	}{
		{"undecodable user", `UPDATE users SET record = '[]' WHERE id = $2`,
			[]string{"user %sam: undecodable record"}},
		{"user record with another id", `UPDATE users SET record = json_build_object('id', 'user_x', 'created_at', record->'created_at', 'emails', record->'emails')::json WHERE id = $2`,
			[]string{"the record says id user_x"}},
		{"user row with another creation time", `UPDATE users SET created_ns = created_ns + 1 WHERE id = $2`,
			[]string{"user %sam: created_ns"}},
		{"address without its user_emails row", `DELETE FROM user_emails WHERE user_id = $1 AND email_lower = 'rose@work.example'`,
			[]string{`user %rose: no user_emails row for "rose@work.example"`}},
		{"user_emails row for an address the user lacks", `INSERT INTO user_emails (email_lower, user_id) VALUES ('x@example.com', $2)`,
			[]string{`user_emails row "x@example.com" of user %sam: the user has no such address`}},
		{"unverified address that links", `UPDATE user_emails SET holder = true WHERE email_lower = 'rose@work.example'`,
			[]string{"it links sign-ins but the address is not verified"}},
		{"account record with another identity", `UPDATE external_accounts SET subject = 'impostor' WHERE id = $4`,
			[]string{`account %sam.eac: the record says`}},
		{"account row with another creation time", `UPDATE external_accounts SET created_ns = 0 WHERE id = $4`,
			[]string{"account %sam.eac: created_ns 0"}},
		{"undecodable account", `UPDATE external_accounts SET record = '"x"' WHERE id = $4`,
			[]string{"account %sam.eac: decoding record", "vouched for by missing account %sam.eac"}},
		{"undecryptable tokens", `UPDATE external_accounts SET tokens = '\x01' WHERE id = $4`,
			[]string{"account %sam.eac: tokens", "vouched for by missing account %sam.eac"}},
		{"email vouched for by another user's account", `UPDATE users SET record = replace(record::text, $4, $3)::json WHERE id = $2`,
			[]string{"is vouched for by account %rose.gh of user %rose"}},
		{"email vouched for by an account that no longer asserts it",
			`UPDATE external_accounts SET record = replace(record::text, 'sam@example.com', 'sam@new.example')::json WHERE id = $4`,
			[]string{`which asserts "sam@new.example"`}},
		{"verified email without vouchers", `UPDATE users SET record = replace(record::text, '"verified_by":["' || $4 || '"]', '"verified_by":[]')::json WHERE id = $2`,
			[]string{"has verified true and 0 vouching accounts"}},
		{"session record of another user", `UPDATE sessions SET record = replace(record::text, $1, $2)::json`,
			[]string{"a session of user %rose: the record says user %sam"}},
		{"session id that does not open", `UPDATE sessions SET id_sealed = '\x01'`,
			[]string{"a session of user %rose: its id"}},
		{"session row with another expiry", `UPDATE sessions SET expires_ns = expires_ns + 1`,
			[]string{"a session of user %rose: the record says"}},
		{"search term the user lacks", `INSERT INTO user_terms (user_id, source, term, created_ns) SELECT id, '', 'stale', created_ns FROM users WHERE id = $2`,
			[]string{`user_terms row "stale" of user %sam (source "")`}},
		{"account's search term missing", `DELETE FROM user_terms WHERE user_id = $1 AND source = $3`,
			[]string{`user %rose: no user_terms row for`}},
		{"search term with another creation time", `UPDATE user_terms SET created_ns = 0 WHERE user_id = $2 AND term = lower($2)`,
			[]string{`of user %sam: created_ns 0`}},
		{"redirect URL record with another URL", `UPDATE redirect_urls SET url = 'other://cb'`,
			[]string{`the row says URL "other://cb"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHealthy(t)
			ids := strings.NewReplacer("$1", quote(h.rose.User.ID), "$2", quote(h.sam.User.ID), "$3", quote(h.roseGH.ID), "$4", quote(h.sam.Account.ID))
			exec(t, h.s, ids.Replace(tc.corrupt))
			problems, err := h.s.Check(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			r := strings.NewReplacer("%sam.eac", h.sam.Account.ID, "%sam", h.sam.User.ID, "%rose.gh", h.roseGH.ID, "%rose", h.rose.User.ID)
			want := make([]string, len(tc.want))
			for i, w := range tc.want {
				want[i] = r.Replace(w)
			}
			if !matchLines(problems, want) {
				t.Errorf("Check =\n  %s\nwant one line each containing %q", strings.Join(problems, "\n  "), want)
			}
			for _, p := range problems {
				if strings.Contains(p, h.roseSessID) {
					t.Errorf("Check printed a session id: %q", p)
				}
			}
		})
	}
}

// matchLines reports whether lines and want pair up one to one, each line
// containing its substring.
func matchLines(lines, want []string) bool {
	if len(lines) != len(want) {
		return false
	}
	used := make([]bool, len(lines))
next:
	for _, w := range want {
		for i, l := range lines {
			if !used[i] && strings.Contains(l, w) {
				used[i] = true
				continue next
			}
		}
		return false
	}
	return true
}

// quote is an id as an SQL literal; ids are [a-z0-9_].
func quote(id string) string { return "'" + id + "'" }
