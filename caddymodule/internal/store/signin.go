package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// SignIn implements Store.SignIn in one transaction, retried whole when it
// loses a race, so two concurrent first sign-ins of one identity create one
// user. It records user.created, external_account.created and user.updated
// (when the sign-in changed an existing user's name, picture or addresses).
func (r Rules) SignIn(ctx context.Context, in SignIn) (SignInResult, error) {
	a := in.Account
	if err := CheckIdentity(a.Issuer, a.Subject); err != nil {
		return SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	if err := a.Tokens.Check(); err != nil {
		return SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	if err := CheckAddress(a.Email); err != nil {
		return SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	in.Account.Email, in.emailInvalid = cleanAsserted(a.Email)
	if in.emailInvalid {
		in.Account.EmailVerified = false
	}
	now := in.Now
	if now.IsZero() {
		now = r.Backend.Now()
	}
	var res SignInResult
	err := r.Backend.Update(ctx, func(tx Tx, out *Outbox) error {
		var err error
		res, err = signIn(tx, out, in, now)
		return err
	})
	if err != nil {
		return SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	res.EmailInvalid = in.emailInvalid
	return res, nil
}

// cleanAsserted applies CleanEmail to an address an account asserts: it
// returns the clean address, or "" and invalid when there was one that is
// not an address (the account then asserts none).
func cleanAsserted(email string) (clean string, invalid bool) {
	if email == "" {
		return "", false
	}
	clean, ok := CleanEmail(email)
	return clean, !ok
}

// cleanAssertedIn puts an asserted address (of an account or a session) in
// its clean form in place: one that is not an address becomes none, and
// so is not verified either.
func cleanAssertedIn(email *string, verified *bool) {
	if clean, invalid := cleanAsserted(*email); invalid {
		*email, *verified = "", false
	} else {
		*email = clean
	}
}

func signIn(tx Tx, out *Outbox, in SignIn, now time.Time) (SignInResult, error) {
	accID, userID, err := tx.Identity(in.Account.Issuer, in.Account.Subject)
	switch {
	case err == nil:
		return signInKnown(tx, out, in, now, accID, userID)
	case errors.Is(err, ErrNotFound):
		return signInNew(tx, out, in, now)
	default:
		return SignInResult{}, fmt.Errorf("looking up identity: %w", err)
	}
}

// signInKnown refreshes the account of a known identity and its user.
func signInKnown(tx Tx, out *Outbox, in SignIn, now time.Time, accID, userID string) (SignInResult, error) {
	if in.LinkToUser != "" && in.LinkToUser != userID {
		return SignInResult{}, ErrIdentityTaken
	}
	u, err := tx.LockUser(userID)
	if errors.Is(err, ErrNotFound) {
		return SignInResult{}, moved("the identity's account %s belongs to user %s, which is missing", accID, userID)
	}
	if err != nil {
		return SignInResult{}, err
	}
	acc, err := tx.Account(accID, userID)
	if errors.Is(err, ErrNotFound) {
		return SignInResult{}, moved("the identity index points at account %s, which is missing", accID)
	}
	if err != nil {
		return SignInResult{}, err
	}
	acc.Refresh(&in.Account, now)
	if in.emailInvalid {
		// The provider asserts something that is not an address: the
		// account vouches for none (not for the one it asserted before).
		acc.Email, acc.EmailVerified = "", false
	}
	emails := in.Emails(tx, out, now)
	changed, err := adoptAccount(emails, u, acc, now)
	if err != nil {
		return SignInResult{}, err
	}
	if err := in.checkAdmission(u, acc, func() ([]*ExternalAccount, error) { return tx.Accounts(u.ID) }); err != nil {
		return SignInResult{}, err
	}
	if err := tx.SaveAccount(acc); err != nil {
		return SignInResult{}, err
	}
	if err := tx.SaveUser(u); err != nil {
		return SignInResult{}, err
	}
	if changed {
		if err := userEvent(tx, out, EventUserUpdated, u, now); err != nil {
			return SignInResult{}, err
		}
	}
	res := SignInResult{User: u, Account: acc}
	emails.report(&res)
	return res, nil
}

// userEvent adds an event about u, with its accounts as tx sees them, to out.
func userEvent(tx Tx, out *Outbox, typ string, u *User, now time.Time) error {
	accs, err := tx.Accounts(u.ID)
	if err != nil {
		return err
	}
	return out.Add(Event{Type: typ, CreatedAt: now, User: u, Accounts: accs})
}

// signInNew links an unknown identity to LinkToUser, to the holder of its
// verified email (as in.EmailLink decides), or to a new user, and creates
// its account.
func signInNew(tx Tx, out *Outbox, in SignIn, now time.Time) (SignInResult, error) {
	a := in.Account
	var u *User
	link, holder := EmailLinkNone, ""
	switch {
	case in.LinkToUser != "":
		if !ValidID(in.LinkToUser) {
			return SignInResult{}, fmt.Errorf("loading user: %w", ErrNotFound)
		}
		var err error
		if u, err = tx.LockUser(in.LinkToUser); err != nil {
			return SignInResult{}, fmt.Errorf("loading user %s: %w", in.LinkToUser, err)
		}
	case in.looksUpEmailHolder():
		var err error
		if link, holder, u, err = emailLinkOf(tx, &in); err != nil {
			return SignInResult{}, err
		}
	}
	userCreated := u == nil
	if userCreated {
		u = &User{ID: NewID("user"), CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertUser(u); err != nil {
			return SignInResult{}, err
		}
	}
	acc := a
	acc.ID = NewID("eac")
	acc.UserID = u.ID
	acc.Status = StatusVerified
	acc.CreatedAt = now
	acc.UpdatedAt = now
	if err := tx.InsertAccount(&acc); err != nil {
		return SignInResult{}, err
	}
	emails := in.Emails(tx, out, now)
	changed, err := adoptAccount(emails, u, &acc, now)
	if err != nil {
		return SignInResult{}, err
	}
	if err := in.checkAdmission(u, &acc, func() ([]*ExternalAccount, error) { return tx.Accounts(u.ID) }); err != nil {
		return SignInResult{}, err
	}
	if in.looksUpEmailHolder() && (holder == "" || link == EmailLinkTakeOver) {
		// The address was free (or freed) when we looked. A store whose
		// transactions see others' commits may have seen someone commit it
		// since: this identity must link to them, so start over.
		again, err := tx.Holder(a.Email)
		if err != nil {
			return SignInResult{}, err
		}
		if again != u.ID {
			return SignInResult{}, moved("the address the sign-in asserts found a holder meanwhile")
		}
	}
	if err := tx.SaveUser(u); err != nil {
		return SignInResult{}, err
	}
	res := SignInResult{User: u, Account: &acc, UserCreated: userCreated, AccountCreated: true}
	emails.report(&res)
	if userCreated {
		err = out.Add(Event{Type: EventUserCreated, CreatedAt: now, User: u, Accounts: []*ExternalAccount{&acc}})
	}
	if err == nil {
		err = out.Add(Event{Type: EventAccountCreated, CreatedAt: now, Account: &acc})
	}
	if err == nil && link == EmailLinkJoin {
		var revoked []*Session
		if revoked, err = tx.DeleteSessions(u.ID); err == nil {
			err = LinkedByEmail(out, &res, &acc, revoked, now)
		}
	}
	if err == nil && changed && !userCreated {
		err = userEvent(tx, out, EventUserUpdated, u, now)
	}
	if err != nil {
		return SignInResult{}, err
	}
	return res, nil
}

// emailLinkOf finds (and locks) the holder of in.Account's verified email
// and applies in.EmailLink to it: it returns the holder's id, and the holder
// itself for EmailLinkJoin; for EmailLinkRefuse it fails with ErrEmailHeld.
// A take-over is the new user's adoptAccount's to carry out.
func emailLinkOf(tx Tx, in *SignIn) (EmailLink, string, *User, error) {
	holder, err := tx.Holder(in.Account.Email)
	if err != nil || holder == "" {
		return EmailLinkNone, "", nil, err
	}
	h, accounts, err := tx.LockHolder(in.Account.Email, holder)
	if err != nil {
		return EmailLinkNone, "", nil, err
	}
	switch link := in.EmailLink(h, accounts); link {
	case EmailLinkJoin:
		return link, holder, h, nil
	case EmailLinkRefuse:
		return link, holder, nil, ErrEmailHeld
	default:
		return link, holder, nil, nil
	}
}

// Refresh copies what a provider reported at this sign-in onto the account;
// every Store implementation applies sign-ins this way. A field the provider
// left empty keeps its old value: Apple sends the name only at the first
// authorization. The token set follows TokenSet.after: a sign-in without a
// grant keeps the held one whole.
func (acc *ExternalAccount) Refresh(from *ExternalAccount, now time.Time) {
	acc.Provider = from.Provider
	if from.Email != "" {
		acc.Email = from.Email
		acc.EmailVerified = from.EmailVerified
	}
	acc.Name = cmp.Or(from.Name, acc.Name)
	acc.Username = cmp.Or(from.Username, acc.Username)
	acc.ImageURL = cmp.Or(from.ImageURL, acc.ImageURL)
	acc.ApprovedScopes = from.ApprovedScopes
	acc.Groups = from.Groups // as of this sign-in: none is none
	acc.Tokens = acc.Tokens.after(from.Tokens)
	acc.Status = StatusVerified
	acc.UpdatedAt = now
}

// adoptAccount records a sign-in through acc on its user u, updating u
// through x: the sign-in time, the account's email (Emails.Sync), and its
// name and picture when u has none yet (adoptProfile). changed reports a
// change beyond the sign-in time; the caller saves u.
func adoptAccount(x *Emails, u *User, acc *ExternalAccount, now time.Time) (changed bool, err error) {
	u.LastSignInAt = now
	changed, err = x.Sync(u, acc)
	if err != nil {
		return false, err
	}
	if u.adoptProfile(acc) {
		changed = true
	}
	if changed {
		u.UpdatedAt = now
	}
	return changed, nil
}

// Emails returns the email rules of this sign-in over tx: a provider
// trusted for linking by email (in.LinkByEmail) may take an address over,
// whatever the sign-in's kind. Their events go to out, dated now.
func (in *SignIn) Emails(tx EmailTx, out *Outbox, now time.Time) *Emails {
	return &Emails{Tx: tx, Out: out, Now: now, Trusted: in.LinkByEmail}
}

// Report adds to res what the rules did beyond the sign-in's user: the
// sessions they ended and the users they relieved of an address.
func (x *Emails) report(res *SignInResult) {
	res.RevokedSessions = append(res.RevokedSessions, x.Revoked...)
	res.Relieved = append(res.Relieved, x.Relieved...)
}

// checkAdmission refuses a banned or locked u (User.CanSignIn), then asks
// in.Admit, when set, about u and its accounts as the sign-in leaves them:
// stored lists u's accounts as the transaction sees them, and acc
// (refreshed, or new) takes the place of its stored copy. A sign-in calls
// it after adoptAccount, before writing u and acc.
func (in *SignIn) checkAdmission(u *User, acc *ExternalAccount, stored func() ([]*ExternalAccount, error)) error {
	if err := u.CanSignIn(); err != nil {
		return err
	}
	if in.Admit == nil {
		return nil
	}
	accounts, err := stored()
	if err != nil {
		return err
	}
	accounts = slices.DeleteFunc(accounts, func(a *ExternalAccount) bool { return a.ID == acc.ID })
	return in.Admit(u, append(accounts, acc))
}

// adoptProfile gives u the account's name and picture where u has none,
// and reports a change.
func (u *User) adoptProfile(acc *ExternalAccount) bool {
	changed := false
	if u.Name == "" && acc.Name != "" {
		u.Name, changed = acc.Name, true
	}
	if u.ImageURL == "" && acc.ImageURL != "" {
		u.ImageURL, changed = acc.ImageURL, true
	}
	return changed
}
