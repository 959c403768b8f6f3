package store

import (
	"slices"
	"time"
)

// A verified address belongs to at most one user at a time: the user the
// email index links it to (its holder). Every other user may have it on
// their list, unverified, and it never stands for them (headers, identity
// token, /me, allow_emails, the API). An address is verified on a user
// exactly when that user holds it, and then at least one of the user's
// accounts vouches for it (its provider asserts it, verified, as of its last
// sign-in). A session never goes on presenting an address its user lost:
// when another user takes it over, the sessions that carried it end (they
// presented someone else's address); when the user gives it up (an unlink,
// a provider's change), they go on without it.
//
// The rules below are the only place that decides any of this, and what an
// unlink ends; each Store implementation gives them an EmailTx over its own
// transaction.

// EmailTx is one store transaction as the email rules see it: the email
// index, and the few records a take-over changes. Implementations normalize
// the addresses they are given (see normalizeEmail) themselves.
type EmailTx interface {
	// Record notes that u has email, verified or not. Recording an address
	// u already has is not an error and changes nothing.
	Record(email string, u *User) error
	// Holder returns the id of the live user holding the verified email, or
	// "" when no one does.
	Holder(email string) (string, error)
	// Hold makes email link to u; the caller made sure no one else holds it.
	Hold(email string, u *User) error
	// Release makes email stop linking to userID, if it does; an address
	// held by another user, or by no one, is left alone.
	Release(email, userID string) error
	// LockHolder loads the user id that Holder named for email, with its
	// accounts, for a change saved with SaveUser (a store that locks locks
	// it, and starts over when the address moved meanwhile).
	LockHolder(email, id string) (*User, []*ExternalAccount, error)
	// SaveUser writes a user LockHolder loaded.
	SaveUser(u *User) error
	// EndSessions deletes the user's live sessions that match reports, and
	// returns them.
	EndSessions(userID string, match func(*Session) bool) ([]*Session, error)
	// RewriteSessions calls change with each of the user's live sessions
	// and writes back those it reports changed (their expiry unchanged).
	RewriteSessions(userID string, change func(*Session) bool) error
}

// Emails applies the email rules inside one transaction and collects what
// they did beyond the user they were asked about, for the caller's result.
type Emails struct {
	Tx EmailTx
	// Out receives the events of what the rules changed (session.revoked
	// for each session ended, user.updated for a user relieved of an
	// address); nil only where nothing can end or change (Create, Import).
	Out *Outbox
	Now time.Time
	// Trusted reports whether a provider is trusted to vouch for
	// addresses (its link_by_email): a verified address of one of its
	// accounts takes the address over from a holder no trusted provider
	// vouches for. Nil trusts none, so nothing is taken over.
	Trusted func(provider string) bool

	// Revoked lists the sessions the rules ended.
	Revoked []string
	// Relieved lists the other users that a take-over relieved of an
	// address (their cached copies are stale).
	Relieved []string
}

// Sync brings u's addresses in line with acc's current email: acc vouches
// for that address when the provider says it is verified, and for no other.
// An address acc no longer asserts (the person changed it at the provider,
// which may hand it to someone else) must not keep linking sign-ins to u.
// changed reports a change to u, which the caller saves; every Store
// implementation applies sign-ins and account updates this way.
func (x *Emails) Sync(u *User, acc *ExternalAccount) (changed bool, err error) {
	keep := ""
	if acc.Email != "" && acc.EmailVerified {
		keep = NormalizeEmail(acc.Email)
	}
	changed, err = x.Withdraw(u, acc.ID, keep)
	if err != nil {
		return false, err
	}
	merged, err := x.merge(u, acc)
	return changed || merged, err
}

// Withdraw removes accID from the vouchers of u's addresses other than keep
// (normalized; "" keeps none, as when the account is unlinked). An address
// left without vouchers is withdrawn from u (see withdraw). changed reports
// a change to u, which the caller saves.
func (x *Emails) Withdraw(u *User, accID, keep string) (changed bool, err error) {
	for i := range u.Emails {
		e := &u.Emails[i]
		if !slices.Contains(e.VerifiedBy, accID) || NormalizeEmail(e.Email) == keep {
			continue
		}
		e.VerifiedBy = slices.DeleteFunc(e.VerifiedBy, func(id string) bool { return id == accID })
		changed = true
		if len(e.VerifiedBy) == 0 {
			if err := x.withdraw(u, e, false); err != nil {
				return false, err
			}
		}
	}
	return changed, nil
}

// withdraw makes e, one of u's addresses, unverified: it stops linking to u,
// and stays on u's list (and recorded in the index) as an unverified
// address. The sessions of u that carry it end when taken, u having lost it
// to another user; else they go on without it.
func (x *Emails) withdraw(u *User, e *EmailAddress, taken bool) error {
	e.Verified, e.VerifiedBy = false, nil
	if err := x.Tx.Release(e.Email, u.ID); err != nil {
		return err
	}
	email := NormalizeEmail(e.Email)
	carries := func(s *Session) bool { return s.VerifiedEmail() != "" && NormalizeEmail(s.Email) == email }
	if taken {
		return x.endSessions(u.ID, carries)
	}
	return x.Tx.RewriteSessions(u.ID, func(s *Session) bool {
		if !carries(s) {
			return false
		}
		s.Email, s.EmailVerified, s.UpdatedAt = "", false, x.Now
		return true
	})
}

// Unlink carries out the unlink of acc from u, its user, beyond the
// account's own records: the sessions signed in through acc end (whoever
// signed in with an identity the user removed keeps nothing of the
// account), and acc's vouching is withdrawn (Withdraw: the sessions
// carrying an address the user loses with it go on without it). Sessions that do
// not record their account (from before it was recorded) are left alone.
// changed reports a change to u, which the caller saves; every Store
// implementation unlinks this way.
func (x *Emails) Unlink(u *User, acc *ExternalAccount) (changed bool, err error) {
	if err := x.endSessions(u.ID, func(s *Session) bool { return s.AccountID == acc.ID }); err != nil {
		return false, err
	}
	return x.Withdraw(u, acc.ID, "")
}

// endSessions ends the user's live sessions that match reports, each with a
// session.revoked event.
func (x *Emails) endSessions(userID string, match func(*Session) bool) error {
	ended, err := x.Tx.EndSessions(userID, match)
	if err != nil {
		return err
	}
	ids, err := RevokedSessions(x.Out, ended, x.Now)
	x.Revoked = append(x.Revoked, ids...)
	return err
}

// merge adds acc's email to u and records it. A verified one is verified on
// u, vouched for by acc, when u holds it or gets it (claim); else it stays
// unverified on u, as an unverified one always does.
func (x *Emails) merge(u *User, acc *ExternalAccount) (changed bool, err error) {
	if acc.Email == "" {
		return false, nil
	}
	norm := NormalizeEmail(acc.Email)
	i := u.emailIndex(norm)
	if i < 0 {
		u.Emails = append(u.Emails, EmailAddress{Email: acc.Email})
		i = len(u.Emails) - 1
		changed = true
		if err := x.Tx.Record(acc.Email, u); err != nil {
			return false, err
		}
	}
	if !acc.EmailVerified {
		return changed, nil
	}
	holds, err := x.claim(u, norm, acc.Provider)
	if err != nil {
		return false, err
	}
	e := &u.Emails[i]
	if !holds {
		if e.Verified { // recorded before this rule held: another user holds it
			changed = true
			return changed, x.withdraw(u, e, true)
		}
		return changed, nil
	}
	if !e.Verified {
		e.Verified = true
		changed = true
	}
	if !slices.Contains(e.VerifiedBy, acc.ID) {
		e.VerifiedBy = append(e.VerifiedBy, acc.ID)
		changed = true
	}
	return changed, nil
}

// claim reports whether u holds email (normalized), which an account of u at
// provider asserts as verified, after making u hold it if it can: a free
// address is u's; one another user holds is taken over only when provider
// is trusted and no trusted provider vouches for the holder's (see
// vouching), and stays the holder's otherwise.
func (x *Emails) claim(u *User, email, provider string) (bool, error) {
	holder, err := x.Tx.Holder(email)
	switch {
	case err != nil:
		return false, err
	case holder == u.ID:
		return true, nil
	case holder == "":
		return true, x.Tx.Hold(email, u)
	case x.Trusted == nil || !x.Trusted(provider):
		return false, nil
	}
	h, accounts, err := x.Tx.LockHolder(email, holder)
	if err != nil {
		return false, err
	}
	if _, held := vouching(x.Trusted, provider, h, accounts, email); held {
		return false, nil
	}
	if err := x.relieve(h, accounts, email); err != nil {
		return false, err
	}
	return true, x.Tx.Hold(email, u)
}

// relieve takes email away from h, its holder, for a take-over: it is
// withdrawn from h (whose sessions carrying it end) and h is saved, with a
// user.updated event.
func (x *Emails) relieve(h *User, accounts []*ExternalAccount, email string) error {
	if i := h.emailIndex(email); i >= 0 {
		if err := x.withdraw(h, &h.Emails[i], true); err != nil {
			return err
		}
	} else if err := x.Tx.Release(email, h.ID); err != nil {
		return err
	}
	h.UpdatedAt = x.Now
	if err := x.Tx.SaveUser(h); err != nil {
		return err
	}
	x.Relieved = append(x.Relieved, h.ID)
	return x.Out.Add(Event{Type: EventUserUpdated, CreatedAt: x.Now, User: h, Accounts: accounts})
}

// Create records the addresses of a user the backend API creates (each
// verified, vouched for by the API): one that another user holds refuses
// the creation (Taken), the others are u's. Every Store implementation
// creates users this way; the caller writes u.
func (x *Emails) Create(u *User) error {
	for _, e := range u.Emails {
		holder, err := x.Tx.Holder(e.Email)
		if err != nil {
			return err
		}
		if holder != "" {
			return Taken("email_address")
		}
		if err := x.Tx.Record(e.Email, u); err != nil {
			return err
		}
		if err := x.Tx.Hold(e.Email, u); err != nil {
			return err
		}
	}
	return nil
}

// Import records the addresses of an imported user (rec.User, changed in
// place) in the index: a verified address that another user of the target
// holds already is not verified on this one, and rec's sessions that carry
// such an address are left out. Every Store implementation imports users
// this way; the caller writes the user after.
func (x *Emails) Import(rec *Record) error {
	u := rec.User
	u.Emails = slices.Clone(u.Emails)
	for i := range u.Emails {
		e := &u.Emails[i]
		if err := x.Tx.Record(e.Email, u); err != nil {
			return err
		}
		if !e.Verified {
			continue
		}
		switch holder, err := x.Tx.Holder(e.Email); {
		case err != nil:
			return err
		case holder == "":
			if err := x.Tx.Hold(e.Email, u); err != nil {
				return err
			}
		case holder != u.ID:
			e.Verified, e.VerifiedBy = false, nil
		}
	}
	rec.Sessions = slices.DeleteFunc(slices.Clone(rec.Sessions), func(s *Session) bool { return !u.Presents(s) })
	return nil
}

// Holds reports whether email is one of u's verified addresses: the user
// holds it (see the rules above).
func (u *User) Holds(email string) bool {
	i := u.emailIndex(NormalizeEmail(email))
	return i >= 0 && u.Emails[i].Verified
}

// Presents reports whether s may carry its address for u: it carries none
// as verified, or one u holds. A Store refuses to keep a session that does
// not (CreateSession drops its address, a change ends it).
func (u *User) Presents(s *Session) bool {
	return s.VerifiedEmail() == "" || u.Holds(s.Email)
}

// dropUnheldEmail leaves out of s, a session being created for u, the
// verified address u does not hold: u lost it after the caller read u, and
// a session never presents an address its user lost. Every Store
// implementation creates sessions this way, with u read in the creating
// transaction.
func (u *User) dropUnheldEmail(s *Session) {
	if !u.Presents(s) {
		s.Email, s.EmailVerified = "", false
	}
}

// emailIndex returns the index in u.Emails of email (normalized), or -1.
func (u *User) emailIndex(email string) int {
	return slices.IndexFunc(u.Emails, func(e EmailAddress) bool { return NormalizeEmail(e.Email) == email })
}
