package store

import "slices"

// EmailIndex is a store's index of users' email addresses, used inside one
// transaction. It holds two things: every address each user has (verified or
// not), and for each verified address the one user it links sign-ins to (its
// holder). SyncEmail and WithdrawVouching decide what changes; an EmailIndex
// only carries it out. Implementations normalize the addresses they are given
// (see normalizeEmail) themselves.
type EmailIndex interface {
	// Record notes that u has email, verified or not. Recording an address
	// u already has is not an error and changes nothing.
	Record(email string, u *User) error
	// Claim makes the verified email link to u, unless another (live) user
	// holds it already, in which case it changes nothing.
	Claim(email string, u *User) error
	// Release makes email stop linking to userID, if it does; an address
	// held by another user, or by no one, is left alone.
	Release(email, userID string) error
}

// SyncEmail brings u's addresses in line with acc's current email, updating
// u and idx: acc vouches for that address when the provider says it is
// verified, and for no other. An address acc no longer asserts (the person
// changed it at the provider, which may hand it to someone else) must not
// keep linking sign-ins to u. changed reports a change to u, which the caller
// saves; every Store implementation applies sign-ins and account updates this
// way.
func SyncEmail(idx EmailIndex, u *User, acc *ExternalAccount) (changed bool, err error) {
	keep := ""
	if acc.Email != "" && acc.EmailVerified {
		keep = normalizeEmail(acc.Email)
	}
	changed, err = WithdrawVouching(idx, u, acc.ID, keep)
	if err != nil {
		return false, err
	}
	merged, err := mergeEmail(idx, u, acc)
	return changed || merged, err
}

// WithdrawVouching removes accID from the vouchers of u's addresses other
// than keep (normalized; "" keeps none, as when the account is unlinked). An
// address left without vouchers becomes unverified and is released in idx,
// so it stops linking to u; it stays on u's list (and recorded in idx) as an
// unverified address. changed reports a change to u, which the caller saves.
func WithdrawVouching(idx EmailIndex, u *User, accID, keep string) (changed bool, err error) {
	for i := range u.Emails {
		e := &u.Emails[i]
		if !slices.Contains(e.VerifiedBy, accID) || normalizeEmail(e.Email) == keep {
			continue
		}
		e.VerifiedBy = slices.DeleteFunc(e.VerifiedBy, func(id string) bool { return id == accID })
		changed = true
		if len(e.VerifiedBy) > 0 {
			continue
		}
		e.VerifiedBy = nil
		e.Verified = false
		if err := idx.Release(e.Email, u.ID); err != nil {
			return false, err
		}
	}
	return changed, nil
}

// mergeEmail adds acc's email to u and records it in idx. A verified one is
// marked verified, vouched for by acc, and claimed for u (so it links to u
// unless another user holds it already); an unverified one is recorded but
// never claimed (so it never links).
func mergeEmail(idx EmailIndex, u *User, acc *ExternalAccount) (changed bool, err error) {
	if acc.Email == "" {
		return false, nil
	}
	norm := normalizeEmail(acc.Email)
	i := slices.IndexFunc(u.Emails, func(e EmailAddress) bool { return normalizeEmail(e.Email) == norm })
	if i < 0 {
		u.Emails = append(u.Emails, EmailAddress{Email: acc.Email})
		i = len(u.Emails) - 1
		changed = true
		if err := idx.Record(acc.Email, u); err != nil {
			return false, err
		}
	}
	if !acc.EmailVerified {
		return changed, nil
	}
	e := &u.Emails[i]
	if !e.Verified {
		e.Verified = true
		changed = true
	}
	if !slices.Contains(e.VerifiedBy, acc.ID) {
		e.VerifiedBy = append(e.VerifiedBy, acc.ID)
		changed = true
	}
	if err := idx.Claim(acc.Email, u); err != nil {
		return false, err
	}
	return changed, nil
}
