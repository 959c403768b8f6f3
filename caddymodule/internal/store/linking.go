package store

import (
	"slices"
	"time"
)

// EmailLink is what a first sign-in (an unknown identity, no LinkToUser)
// does about the user who holds the verified address it asserts: the user
// the email index links that address to.
type EmailLink int

const (
	// EmailLinkNone: no one else is involved, or the holder keeps the
	// address and the identity gets a new user beside it, on which the
	// address is not verified (neither side's word is trusted for linking,
	// or linking by email is off).
	EmailLinkNone EmailLink = iota
	// EmailLinkJoin: the identity joins the holder (a link by email). Every
	// session the holder had is revoked: whoever signed in to that user
	// before does not share the newcomer's account unnoticed.
	EmailLinkJoin
	// EmailLinkTakeOver: the identity gets a new user, which takes the
	// address over (see Emails.Sync): the newcomer's provider is trusted
	// for linking, and no trusted provider vouched for the holder's address
	// (someone who signed up first through an untrusted provider cannot
	// keep the real owner's later sign-ins apart, nor draw them in). The
	// address is withdrawn from the holder, whose sessions carrying it end.
	EmailLinkTakeOver
	// EmailLinkRefuse: the sign-in fails with ErrEmailHeld: a trusted
	// provider vouched for the holder's address, and the newcomer's provider
	// is not trusted. Its owner signs in to that user first and connects the
	// new provider from the account page (a link they confirmed by signing
	// in, as Keycloak's "confirm link existing account").
	EmailLinkRefuse
)

// EmailLink decides what a first sign-in does about holder, the user holding
// the address in.Account asserts (nil when no one does), whose linked
// accounts are accounts; every Store implementation applies sign-ins this
// way. An address links two identities only when each side proved it to a
// provider trusted for linking (in.LinkByEmail): the newcomer's provider
// calls it verified now, and an account of the holder, at a trusted
// provider, vouches for it (still asserts it, verified, as of its last
// sign-in). Trust is the configuration's now, not when the vouching
// happened: a provider turned off stops vouching at once.
func (in *SignIn) EmailLink(holder *User, accounts []*ExternalAccount) EmailLink {
	a := in.Account
	if holder == nil || in.LinkByEmail == nil || !a.EmailVerified || a.Email == "" {
		return EmailLinkNone
	}
	newcomer, held := vouching(in.LinkByEmail, a.Provider, holder, accounts, NormalizeEmail(a.Email))
	switch {
	case newcomer && held:
		return EmailLinkJoin
	case newcomer:
		return EmailLinkTakeOver
	case held:
		return EmailLinkRefuse
	}
	return EmailLinkNone
}

// looksUpEmailHolder reports whether a first sign-in needs the holder of
// its address at all: a Store implementation reads (and, where it locks,
// locks) the holder only then.
func (in *SignIn) looksUpEmailHolder() bool {
	return in.LinkToUser == "" && in.LinkByEmail != nil && in.Account.EmailVerified && in.Account.Email != ""
}

// vouching is the rule both a first sign-in's link (EmailLink) and a
// take-over (Emails.claim) decide by: whether trusted trusts provider, the
// newcomer's, and whether one of holder's accounts, at a trusted provider,
// vouches for holder's verified address email (normalized).
func vouching(trusted func(string) bool, provider string, holder *User, accounts []*ExternalAccount, email string) (newcomer, held bool) {
	return trusted(provider), holder.trustedVouching(email, accounts, trusted)
}

// trustedVouching reports whether one of accounts, at a provider trusted
// reports true for, or the backend API (VouchedByAPI) vouches for u's
// verified address email (normalized).
func (u *User) trustedVouching(email string, accounts []*ExternalAccount, trusted func(string) bool) bool {
	i := u.emailIndex(email)
	if i < 0 || !u.Emails[i].Verified {
		return false
	}
	if slices.Contains(u.Emails[i].VerifiedBy, VouchedByAPI) {
		return true // the operator's app created the user with it
	}
	for _, acc := range accounts {
		if slices.Contains(u.Emails[i].VerifiedBy, acc.ID) && acc.EmailVerified &&
			NormalizeEmail(acc.Email) == email && trusted(acc.Provider) {
			return true
		}
	}
	return false
}

// LinkedByEmail records, in out, the consequences of a link by email of acc
// to u (EmailLinkJoin): the external_account.linked_by_email event, then a
// session.revoked event for each of revoked, the sessions the store ended in
// the same transaction. It fills res's LinkedByEmail and RevokedSessions.
// Every Store implementation records links by email this way.
func LinkedByEmail(out *Outbox, res *SignInResult, acc *ExternalAccount, revoked []*Session, now time.Time) error {
	if err := out.Add(Event{Type: EventAccountLinkedByEmail, CreatedAt: now, Account: acc}); err != nil {
		return err
	}
	res.LinkedByEmail = true
	var err error
	res.RevokedSessions, err = RevokedSessions(out, revoked, now)
	return err
}

// RevokedSessions records, in out, a session.revoked event for each of
// revoked that was live, sessions a store ended in the transaction of out,
// and returns their ids. Every Store implementation records sessions
// ended by someone else this way.
func RevokedSessions(out *Outbox, revoked []*Session, now time.Time) ([]string, error) {
	var ids []string
	for _, s := range revoked {
		if now.Before(s.ExpiresAt) {
			if err := out.Add(Event{Type: EventSessionRevoked, CreatedAt: now, Session: s}); err != nil {
				return nil, err
			}
		}
		ids = append(ids, s.ID)
	}
	return ids, nil
}
