package store

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// SignIn implements Store.SignIn in one transaction, retried whole on conflict,
// so two concurrent first sign-ins of one identity create one user. It
// records user.created, external_account.created and user.updated (when the
// sign-in changed an existing user's name, picture or addresses).
func (b *Badger) SignIn(ctx context.Context, in SignIn) (SignInResult, error) {
	a := in.Account
	if a.Issuer == "" || a.Subject == "" || strings.ContainsRune(a.Issuer, 0) {
		return SignInResult{}, fmt.Errorf("signing in with %s: the identity needs an issuer (without NUL) and a subject", a.Provider)
	}
	if err := a.Tokens.Check(); err != nil {
		return SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	now := in.Now
	if now.IsZero() {
		now = b.now()
	}
	var res SignInResult
	err := b.updateWithEvents(ctx, func(txn *badger.Txn, out *Outbox) error {
		var err error
		res, err = signIn(txn, out, in, now)
		return err
	})
	if err != nil {
		return SignInResult{}, fmt.Errorf("signing in with %s: %w", a.Provider, err)
	}
	return res, nil
}

func signIn(txn *badger.Txn, out *Outbox, in SignIn, now time.Time) (SignInResult, error) {
	eacID, err := getString(txn, identityKey(in.Account.Issuer, in.Account.Subject))
	switch {
	case err == nil:
		return signInKnown(txn, out, in, now, eacID)
	case errors.Is(err, ErrNotFound):
		return signInNew(txn, out, in, now)
	default:
		return SignInResult{}, fmt.Errorf("looking up identity: %w", err)
	}
}

// signInKnown refreshes the account of a known identity and its user.
func signInKnown(txn *badger.Txn, out *Outbox, in SignIn, now time.Time, eacID string) (SignInResult, error) {
	var acc ExternalAccount
	if err := getJSON(txn, eacKey(eacID), &acc); err != nil {
		return SignInResult{}, inconsistent(err, "identity index points at account %s", eacID)
	}
	if in.LinkToUser != "" && in.LinkToUser != acc.UserID {
		return SignInResult{}, ErrIdentityTaken
	}
	var u User
	if err := getJSON(txn, userKey(acc.UserID), &u); err != nil {
		return SignInResult{}, inconsistent(err, "account %s belongs to user %s", acc.ID, acc.UserID)
	}
	acc.Refresh(&in.Account, now)
	emails := in.Emails(badgerEmails{txn, now}, out, now)
	changed, err := AdoptAccount(emails, &u, &acc, now)
	if err != nil {
		return SignInResult{}, err
	}
	if err := in.CheckAdmission(&u, &acc, func() ([]*ExternalAccount, error) { return accountsOf(txn, u.ID) }); err != nil {
		return SignInResult{}, err
	}
	if err := setJSON(txn, eacKey(acc.ID), &acc, 0); err != nil {
		return SignInResult{}, err
	}
	if err := setJSON(txn, userKey(u.ID), &u, 0); err != nil {
		return SignInResult{}, err
	}
	if changed {
		if err := userEvent(txn, out, EventUserUpdated, &u, now); err != nil {
			return SignInResult{}, err
		}
	}
	res := SignInResult{User: &u, Account: &acc}
	emails.Report(&res)
	return res, nil
}

// userEvent adds an event about u, with its accounts as txn sees them, to out.
func userEvent(txn *badger.Txn, out *Outbox, typ string, u *User, now time.Time) error {
	accs, err := accountsOf(txn, u.ID)
	if err != nil {
		return err
	}
	return out.Add(Event{Type: typ, CreatedAt: now, User: u, Accounts: accs})
}

// signInNew links an unknown identity to LinkToUser, to the holder of its
// verified email (as in.EmailLink decides), or to a new user, and creates
// its account and indexes.
func signInNew(txn *badger.Txn, out *Outbox, in SignIn, now time.Time) (SignInResult, error) {
	a := in.Account
	var u User
	userCreated := false
	link := EmailLinkNone
	switch {
	case in.LinkToUser != "":
		if !validID(in.LinkToUser) {
			return SignInResult{}, fmt.Errorf("loading user: %w", ErrNotFound)
		}
		if err := getJSON(txn, userKey(in.LinkToUser), &u); err != nil {
			return SignInResult{}, fmt.Errorf("loading user %s: %w", in.LinkToUser, err)
		}
	case in.LooksUpEmailHolder():
		var err error
		if link, err = emailLinkOf(txn, &in, &u, now); err != nil {
			return SignInResult{}, err
		}
	}
	if u.ID == "" {
		u = User{ID: NewID("user"), CreatedAt: now, UpdatedAt: now}
		userCreated = true
		if err := addUser(txn, &u); err != nil {
			return SignInResult{}, err
		}
	}

	acc := a
	acc.ID = NewID("eac")
	acc.UserID = u.ID
	acc.Status = StatusVerified
	acc.CreatedAt = now
	acc.UpdatedAt = now
	emails := in.Emails(badgerEmails{txn, now}, out, now)
	changed, err := AdoptAccount(emails, &u, &acc, now)
	if err != nil {
		return SignInResult{}, err
	}
	if err := in.CheckAdmission(&u, &acc, func() ([]*ExternalAccount, error) { return accountsOf(txn, u.ID) }); err != nil {
		return SignInResult{}, err
	}
	if err := txn.Set(identityKey(acc.Issuer, acc.Subject), []byte(acc.ID)); err != nil {
		return SignInResult{}, err
	}
	if err := txn.Set(userEACKey(u.ID, acc.ID), nil); err != nil {
		return SignInResult{}, err
	}
	if err := setJSON(txn, eacKey(acc.ID), &acc, 0); err != nil {
		return SignInResult{}, err
	}
	if err := setJSON(txn, userKey(u.ID), &u, 0); err != nil {
		return SignInResult{}, err
	}
	res := SignInResult{User: &u, Account: &acc, UserCreated: userCreated, AccountCreated: true}
	emails.Report(&res)
	if userCreated {
		err = out.Add(Event{Type: EventUserCreated, CreatedAt: now, User: &u, Accounts: []*ExternalAccount{&acc}})
	}
	if err == nil {
		err = out.Add(Event{Type: EventAccountCreated, CreatedAt: now, Account: &acc})
	}
	if err == nil && link == EmailLinkJoin {
		var revoked []*Session
		if revoked, err = revokeSessionsOf(txn, u.ID); err == nil {
			err = LinkedByEmail(out, &res, &acc, revoked, now)
		}
	}
	if err == nil && changed && !userCreated {
		err = userEvent(txn, out, EventUserUpdated, &u, now)
	}
	if err != nil {
		return SignInResult{}, err
	}
	return res, nil
}

// emailLinkOf finds the holder of in.Account's verified email and applies
// in.EmailLink to it: for EmailLinkJoin it loads the holder into u, and for
// EmailLinkRefuse it fails with ErrEmailHeld. A take-over is the new user's
// AdoptAccount's to carry out.
func emailLinkOf(txn *badger.Txn, in *SignIn, u *User, now time.Time) (EmailLink, error) {
	x := badgerEmails{txn, now}
	holder, err := x.Holder(in.Account.Email)
	if err != nil || holder == "" {
		return EmailLinkNone, err
	}
	h, accounts, err := x.LockHolder(in.Account.Email, holder)
	if err != nil {
		return EmailLinkNone, err
	}
	link := in.EmailLink(h, accounts)
	switch link {
	case EmailLinkJoin:
		*u = *h
	case EmailLinkRefuse:
		err = ErrEmailHeld
	}
	return link, err
}

// revokeSessionsOf deletes every session of the user, with its index
// entries, and returns them.
func revokeSessionsOf(txn *badger.Txn, userID string) ([]*Session, error) {
	ids, err := collectKeys(txn, prefixUserSess+userID+"/", 0)
	if err != nil {
		return nil, err
	}
	return deleteSessions(txn, userID, ids)
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

// AdoptAccount records a sign-in through acc on its user u, updating u
// through x: the sign-in time, the account's email (Emails.Sync), and its
// name and picture when u has none yet (AdoptProfile). changed reports a
// change beyond the sign-in time; the caller saves u. Every Store
// implementation applies sign-ins this way.
func AdoptAccount(x *Emails, u *User, acc *ExternalAccount, now time.Time) (changed bool, err error) {
	u.LastSignInAt = now
	changed, err = x.Sync(u, acc)
	if err != nil {
		return false, err
	}
	if u.AdoptProfile(acc) {
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
func (x *Emails) Report(res *SignInResult) {
	res.RevokedSessions = append(res.RevokedSessions, x.Revoked...)
	res.Relieved = append(res.Relieved, x.Relieved...)
}

// CheckAdmission refuses a banned or locked u (User.CanSignIn), then asks
// in.Admit, when set, about u and its accounts as the sign-in leaves them: stored lists u's accounts as the transaction sees them, and
// acc (refreshed, or new) takes the place of its stored copy. Every Store
// implementation calls it after AdoptAccount, before writing u and acc.
func (in *SignIn) CheckAdmission(u *User, acc *ExternalAccount, stored func() ([]*ExternalAccount, error)) error {
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

// AdoptProfile gives u the account's name and picture where u has none;
// every Store implementation applies sign-ins this way. It reports a change.
func (u *User) AdoptProfile(acc *ExternalAccount) bool {
	changed := false
	if u.Name == "" && acc.Name != "" {
		u.Name, changed = acc.Name, true
	}
	if u.ImageURL == "" && acc.ImageURL != "" {
		u.ImageURL, changed = acc.ImageURL, true
	}
	return changed
}

// badgerEmails is the Badger EmailTx: idx/user_email records the addresses
// each user has, idx/email names the holder of a verified one.
type badgerEmails struct {
	txn *badger.Txn
	now time.Time
}

// Record sets u's idx/user_email entry for email.
func (x badgerEmails) Record(email string, u *User) error {
	return x.txn.Set(userEmailKey(email, u.ID), []byte(createdOrder(u.CreatedAt)))
}

// Holder returns the live user idx/email names for email.
func (x badgerEmails) Holder(email string) (string, error) { return emailHolder(x.txn, email) }

// Hold points idx/email at u.
func (x badgerEmails) Hold(email string, u *User) error {
	return x.txn.Set(emailKey(email), []byte(u.ID))
}

// Release deletes the idx/email entry of email if it names userID.
func (x badgerEmails) Release(email, userID string) error {
	return releaseEmail(x.txn, email, userID)
}

// LockHolder loads the user id with its accounts; the transaction's
// conflict detection stands for a lock.
func (x badgerEmails) LockHolder(_, id string) (*User, []*ExternalAccount, error) {
	var h User
	if err := getJSON(x.txn, userKey(id), &h); err != nil {
		return nil, nil, fmt.Errorf("loading user %s: %w", id, err)
	}
	accounts, err := accountsOf(x.txn, id)
	return &h, accounts, err
}

// SaveUser writes u.
func (x badgerEmails) SaveUser(u *User) error { return setJSON(x.txn, userKey(u.ID), u, 0) }

// EndSessions deletes the user's live sessions that match reports, with
// their index entries.
func (x badgerEmails) EndSessions(userID string, match func(*Session) bool) ([]*Session, error) {
	live, err := liveSessionsOf(x.txn, userID, x.now)
	if err != nil {
		return nil, err
	}
	var matching []string
	for _, s := range live {
		if match(s) {
			matching = append(matching, s.ID)
		}
	}
	return deleteSessions(x.txn, userID, matching)
}

// RewriteSessions writes back the user's live sessions that change changed.
func (x badgerEmails) RewriteSessions(userID string, change func(*Session) bool) error {
	live, err := liveSessionsOf(x.txn, userID, x.now)
	if err != nil {
		return err
	}
	for _, s := range live {
		if change(s) {
			if err := setJSON(x.txn, sessionKey(s.ID), s, badgerExpiry(s.ExpiresAt)); err != nil {
				return err
			}
		}
	}
	return nil
}

// liveSessionsOf reads the user's sessions that are live at now.
func liveSessionsOf(txn *badger.Txn, userID string, now time.Time) ([]*Session, error) {
	ids, err := collectKeys(txn, prefixUserSess+userID+"/", 0)
	if err != nil {
		return nil, err
	}
	var live []*Session
	for _, sid := range ids {
		var s Session
		err := getJSON(txn, sessionKey(sid), &s)
		if errors.Is(err, ErrNotFound) || (err == nil && (s.UserID != userID || !now.Before(s.ExpiresAt))) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("loading a session: %w", redact(err, sid))
		}
		s.ID = sid
		live = append(live, &s)
	}
	return live, nil
}

// releaseEmail deletes the idx/email entry of email if it names userID.
func releaseEmail(txn *badger.Txn, email, userID string) error {
	holder, err := getString(txn, emailKey(email))
	if errors.Is(err, ErrNotFound) || (err == nil && holder != userID) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up email: %w", err)
	}
	return txn.Delete(emailKey(email))
}

// emailHolder returns the user indexed under a verified email, or "" when
// none is (an entry whose user is gone counts as none).
func emailHolder(txn *badger.Txn, email string) (string, error) {
	uid, err := getString(txn, emailKey(email))
	if errors.Is(err, ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("looking up email: %w", err)
	}
	ok, err := exists(txn, userKey(uid))
	if err != nil || !ok {
		return "", err
	}
	return uid, nil
}

// inconsistent describes a record an index promised but the store lacks. It
// deliberately does not wrap ErrNotFound, which callers read as "no such user".
func inconsistent(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store is inconsistent: %s, which is missing", what)
	}
	return fmt.Errorf("%s: %w", what, err)
}
