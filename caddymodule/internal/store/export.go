package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Record is one unit of a store's export: either a user with its linked
// accounts (tokens included) and live sessions, or one redirect URL. It is
// what storage-migrate carries from one store implementation to another;
// ids and timestamps are preserved exactly.
type Record struct {
	User        *User              `json:"user,omitempty"`
	Accounts    []*ExternalAccount `json:"accounts,omitempty"`
	Sessions    []*Session         `json:"sessions,omitempty"`
	RedirectURL *RedirectURL       `json:"redirect_url,omitempty"`
}

// ImportResult says what Import did with a record.
type ImportResult struct {
	// Imported is false when the record existed already (same user id, or
	// same redirect URL id or URL): nothing was written.
	Imported bool
	// Accounts and Sessions count what was written with the user.
	Accounts, Sessions int
}

// ErrImportConflict means an imported record clashes with a different
// record of the target (an identity linked to another account, a redirect
// URL recorded under another id). Nothing of the record was written.
var ErrImportConflict = errors.New("conflicts with a different record of the target store")

// SortForExport orders users oldest first (then by id), the order exports
// use: a verified address held by two users links to the older one, as it
// did when the younger one verified it.
func SortForExport(users []*User) {
	slices.SortFunc(users, func(x, y *User) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
}

// Export calls fn with every user (oldest first, with its accounts and live
// sessions), then every redirect URL (oldest first), all read in one
// snapshot. An error of fn stops the export and is returned.
func (b *Badger) Export(ctx context.Context, fn func(rec Record) error) error {
	var recs []Record
	err := b.view(ctx, func(txn *badger.Txn) error {
		now := b.now()
		var users []*User
		err := scan(txn, prefixUser, false, func(id string, val []byte) error {
			var u User
			if err := getJSON(txn, userKey(id), &u); err != nil {
				return fmt.Errorf("loading user %s: %w", id, err)
			}
			users = append(users, &u)
			return nil
		})
		if err != nil {
			return err
		}
		SortForExport(users)
		for _, u := range users {
			accs, err := accountsOf(txn, u.ID)
			if err != nil {
				return err
			}
			rec := Record{User: u, Accounts: accs}
			err = scanKeys(txn, prefixUserSess+u.ID+"/", func(sid string) error {
				var s Session
				err := getJSON(txn, sessionKey(sid), &s)
				if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != u.ID || !now.Before(s.ExpiresAt))) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("loading a session: %w", redact(err, sid))
				}
				rec.Sessions = append(rec.Sessions, &s)
				return nil
			})
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		var rus []*RedirectURL
		err = scan(txn, prefixRedirect, false, func(id string, val []byte) error {
			var ru RedirectURL
			if err := getJSON(txn, []byte(prefixRedirect+id), &ru); err != nil {
				return err
			}
			rus = append(rus, &ru)
			return nil
		})
		slices.SortFunc(rus, func(x, y *RedirectURL) int {
			return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
		})
		for _, ru := range rus {
			recs = append(recs, Record{RedirectURL: ru})
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("exporting store: %w", err)
	}
	return EmitRecords(ctx, recs, fn)
}

// CheckUser refuses a user record whose ids could not have been made here or
// whose accounts are not the user's; every Store implementation imports
// only what passes.
func (rec *Record) CheckUser() error {
	u := rec.User
	if !ValidID(u.ID) {
		return fmt.Errorf("importing user %q: invalid id", u.ID)
	}
	for _, a := range rec.Accounts {
		if !ValidID(a.ID) || a.UserID != u.ID || a.Issuer == "" || a.Subject == "" ||
			strings.ContainsRune(a.Issuer, 0) || strings.ContainsRune(a.Subject, 0) {
			return fmt.Errorf("importing user %s: account %q is invalid or not the user's", u.ID, a.ID)
		}
		if err := a.Tokens.Check(); err != nil {
			return fmt.Errorf("importing user %s: account %s: %w", u.ID, a.ID, err)
		}
	}
	return nil
}

// EmitRecords hands an export's records, read in one snapshot, to fn in
// order, stopping at fn's first error or when ctx ends; every Store
// implementation exports this way.
func EmitRecords(ctx context.Context, recs []Record, fn func(rec Record) error) error {
	for _, rec := range recs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// Import writes one exported record in one transaction, exactly as given
// (ids, timestamps, tokens), with its indexes, and records no events. A
// record whose user (or redirect URL) exists already is skipped whole, so
// importing an export twice changes nothing the second time. Sessions that
// have expired are not written. A verified address that another user of
// the target holds already is not verified on this user, and sessions that
// carry it are not written (see Emails.Import).
func (b *Badger) Import(ctx context.Context, rec Record) (ImportResult, error) {
	var res ImportResult
	switch {
	case rec.RedirectURL != nil:
		ru := rec.RedirectURL
		if !validID(ru.ID) || ru.URL == "" || strings.ContainsRune(ru.URL, 0) {
			return res, fmt.Errorf("importing redirect URL %q: invalid record", ru.ID)
		}
		err := b.update(ctx, func(txn *badger.Txn) error {
			res = ImportResult{}
			if ok, err := exists(txn, []byte(prefixRedirect+ru.ID)); err != nil || ok {
				return err
			}
			id, err := getString(txn, []byte(prefixRedirectURL+ru.URL))
			if err == nil {
				return fmt.Errorf("%w: the URL is recorded as %s", ErrImportConflict, id)
			}
			if !errors.Is(err, ErrNotFound) {
				return err
			}
			if err := setJSON(txn, []byte(prefixRedirect+ru.ID), ru, 0); err != nil {
				return err
			}
			res.Imported = true
			return txn.Set([]byte(prefixRedirectURL+ru.URL), []byte(ru.ID))
		})
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing redirect URL %s: %w", ru.ID, err)
		}
		if res.Imported {
			b.redirectVersion.Add(1)
		}
		return res, nil
	case rec.User != nil:
	default:
		return res, errors.New("importing: empty record")
	}
	u := rec.User
	if err := rec.CheckUser(); err != nil {
		return res, err
	}
	now := b.now()
	err := b.update(ctx, func(txn *badger.Txn) error {
		res = ImportResult{}
		if ok, err := exists(txn, userKey(u.ID)); err != nil || ok {
			return err
		}
		for _, a := range rec.Accounts {
			if id, err := getString(txn, identityKey(a.Issuer, a.Subject)); err == nil {
				return fmt.Errorf("%w: the identity of account %s is linked to account %s", ErrImportConflict, a.ID, id)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
			if ok, err := exists(txn, eacKey(a.ID)); err != nil {
				return err
			} else if ok {
				return fmt.Errorf("%w: account %s exists under another user", ErrImportConflict, a.ID)
			}
		}
		// Import changes its copy of the record: the closure may run again.
		imp, user := rec, *rec.User
		imp.User = &user
		emails := Emails{Tx: badgerEmails{txn, now}, Now: now}
		if err := emails.Import(&imp); err != nil {
			return err
		}
		if err := setJSON(txn, userKey(u.ID), &user, 0); err != nil {
			return err
		}
		if err := addUser(txn, &user); err != nil {
			return err
		}
		if err := claimHandles(txn, &user, nil); errors.Is(err, ErrExists) {
			return fmt.Errorf("%w: %w", ErrImportConflict, err)
		} else if err != nil {
			return err
		}
		for _, a := range rec.Accounts {
			if err := setJSON(txn, eacKey(a.ID), a, 0); err != nil {
				return err
			}
			if err := txn.Set(identityKey(a.Issuer, a.Subject), []byte(a.ID)); err != nil {
				return err
			}
			if err := txn.Set(userEACKey(u.ID, a.ID), nil); err != nil {
				return err
			}
			res.Accounts++
		}
		for _, s := range imp.Sessions {
			if s.UserID != u.ID || !validID(s.ID) || !now.Before(s.ExpiresAt) {
				continue
			}
			exp := badgerExpiry(s.ExpiresAt)
			if err := setJSON(txn, sessionKey(s.ID), s, exp); err != nil {
				return err
			}
			e := badger.NewEntry(userSessKey(u.ID, s.ID), nil)
			e.ExpiresAt = exp
			if err := txn.SetEntry(e); err != nil {
				return err
			}
			res.Sessions++
		}
		res.Imported = true
		return nil
	})
	if err != nil {
		return ImportResult{}, fmt.Errorf("importing user %s: %w", u.ID, err)
	}
	return res, nil
}
