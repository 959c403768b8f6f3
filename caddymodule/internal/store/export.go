package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// CheckUser refuses a user record whose ids could not have been made here or
// whose accounts are not the user's; every Store implementation imports
// only what passes.
func (rec *Record) CheckUser() error {
	u := rec.User
	if !ValidID(u.ID) {
		return fmt.Errorf("importing user %q: invalid id", u.ID)
	}
	for _, e := range u.Emails {
		if err := CheckAddress(e.Email); err != nil {
			return fmt.Errorf("importing user %s: %w", u.ID, err)
		}
	}
	for _, a := range rec.Accounts {
		if !ValidID(a.ID) || a.UserID != u.ID || CheckIdentity(a.Issuer, a.Subject) != nil || CheckAddress(a.Email) != nil {
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
// (ids, timestamps, tokens), with its indexes, and records no events; an
// implementation's Import calls it with importURL, its own writer of one
// redirect URL, which reports whether it wrote it. A record whose user (or
// redirect URL id) exists already is skipped whole, so importing an export
// twice changes nothing the second time; a URL recorded under another id
// is ErrImportConflict. Sessions that have expired are not written. A
// verified address that another user of the target holds already is not
// verified on this user, and sessions that carry it are not written (see
// Emails.Import).
func (r Rules) Import(ctx context.Context, rec Record, importURL func(ctx context.Context, ru *RedirectURL) (bool, error)) (ImportResult, error) {
	switch ru := rec.RedirectURL; {
	case ru != nil:
		if !ValidID(ru.ID) || CheckRedirectURL(ru.URL) != nil {
			return ImportResult{}, fmt.Errorf("importing redirect URL %q: invalid record", ru.ID)
		}
		imported, err := importURL(ctx, ru)
		if err != nil {
			return ImportResult{}, fmt.Errorf("importing redirect URL %s: %w", ru.ID, err)
		}
		return ImportResult{Imported: imported}, nil
	case rec.User != nil:
		return r.importUser(ctx, rec)
	default:
		return ImportResult{}, errors.New("importing: empty record")
	}
}

// CheckRedirectURL refuses a URL that no store records as a redirect URL:
// an empty one, or one with a NUL.
func CheckRedirectURL(url string) error {
	if url == "" || strings.ContainsRune(url, 0) {
		return errors.New("the URL is empty or invalid")
	}
	return nil
}

func (r Rules) importUser(ctx context.Context, rec Record) (ImportResult, error) {
	if err := rec.CheckUser(); err != nil {
		return ImportResult{}, err
	}
	rec = rec.cleanEmails()
	u := rec.User
	now := r.Backend.Now()
	var res ImportResult
	err := r.Backend.Update(ctx, func(tx Tx, _ *Outbox) error {
		res = ImportResult{}
		if _, err := tx.LockUser(u.ID); err == nil || !errors.Is(err, ErrNotFound) {
			return err
		}
		for _, a := range rec.Accounts {
			if id, _, err := tx.Identity(a.Issuer, a.Subject); err == nil {
				return fmt.Errorf("%w: the identity of account %s is linked to account %s", ErrImportConflict, a.ID, id)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
			if _, err := tx.Account(a.ID, ""); err == nil {
				return fmt.Errorf("%w: account %s exists under another user", ErrImportConflict, a.ID)
			} else if !errors.Is(err, ErrNotFound) {
				return err
			}
		}
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		if err := claimHandles(tx, u, nil); errors.Is(callerErr(err), ErrExists) {
			return fmt.Errorf("%w: %w", ErrImportConflict, callerErr(err))
		} else if err != nil {
			return err
		}
		// Import changes its copy of the record: the closure may run again.
		imp, user := rec, *u
		imp.User = &user
		emails := Emails{Tx: tx, Now: now}
		if err := emails.Import(&imp); err != nil {
			return err
		}
		if err := tx.SaveUser(&user); err != nil {
			return err
		}
		for _, a := range rec.Accounts {
			if err := tx.InsertAccount(a); err != nil {
				return err
			}
			res.Accounts++
		}
		for _, s := range imp.Sessions {
			if s.UserID != u.ID || !ValidID(s.ID) || !now.Before(s.ExpiresAt) {
				continue
			}
			if err := tx.InsertSession(s); err != nil {
				return fmt.Errorf("a session: %w", Redact(err, s.ID))
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

// cleanEmails returns rec with its addresses under CleanEmail, on copies: a
// user's address that is not one is left out (with what it verified),
// another is trimmed, and one that then repeats an earlier one is merged
// into it; an account's or a session's is trimmed, or none. A backup taken before the rule
// held thus comes back under it (an address then held by another user stays
// unverified, see Emails.Import).
func (rec Record) cleanEmails() Record {
	u := *rec.User
	u.Emails = nil
	at := map[string]int{}
	for _, e := range rec.User.Emails {
		clean, ok := CleanEmail(e.Email)
		if !ok {
			continue
		}
		if i, dup := at[NormalizeEmail(clean)]; dup {
			d := &u.Emails[i]
			d.Verified = d.Verified || e.Verified
			for _, by := range e.VerifiedBy {
				if !slices.Contains(d.VerifiedBy, by) {
					d.VerifiedBy = append(d.VerifiedBy, by)
				}
			}
			continue
		}
		at[NormalizeEmail(clean)] = len(u.Emails)
		u.Emails = append(u.Emails, EmailAddress{Email: clean, Verified: e.Verified, VerifiedBy: slices.Clone(e.VerifiedBy)})
	}
	rec.User = &u
	accs := make([]*ExternalAccount, len(rec.Accounts))
	for i, a := range rec.Accounts {
		c := *a
		cleanAssertedIn(&c.Email, &c.EmailVerified)
		accs[i] = &c
	}
	rec.Accounts = accs
	sessions := make([]*Session, len(rec.Sessions))
	for i, x := range rec.Sessions {
		c := *x
		cleanAssertedIn(&c.Email, &c.EmailVerified)
		sessions[i] = &c
	}
	rec.Sessions = sessions
	return rec
}
