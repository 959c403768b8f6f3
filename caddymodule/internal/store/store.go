// Package store keeps socialgate's users, linked external accounts, sessions
// and short-lived flow records. Store is the interface the rest of the gateway
// uses; store/badger (embedded) and store/postgres implement it. The rules of
// what a change does (sign-in, linking, email addresses, users) are written
// once here, as Rules over a small transaction interface (Tx) that each
// implementation supplies. Every method that changes more than one record
// does it in one transaction, so a crash at any instant leaves either the
// whole change or none of it. A change that others may want to
// hear of (a new user, an ended session…) records an Event in that same
// transaction: the outbox that webhooks are delivered from.
package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
)

// Sentinel errors. Implementations wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound means the record does not exist (or has expired).
	ErrNotFound = errors.New("not found")
	// ErrIdentityTaken means a sign-in asked to link an identity to one user
	// while that identity is already linked to another user. Nothing changed.
	ErrIdentityTaken = errors.New("identity is linked to another user")
	// ErrExists means the record to create exists already.
	ErrExists = errors.New("already exists")
	// ErrStale means a compare-and-swap lost: the record changed since it was read.
	ErrStale = errors.New("record changed concurrently")
	// ErrEmailHeld means a first sign-in asserted a verified address that
	// another user holds on the word of a provider trusted for linking by
	// email, while the sign-in's own provider is not trusted for it: the
	// identity may neither join that user nor start a second one with that
	// address (see SignIn.EmailLink). Nothing changed.
	ErrEmailHeld = errors.New("the verified email address belongs to another user")
	// ErrBusy means a record stayed locked by another writer for longer than
	// the caller was willing to wait. Nothing changed.
	ErrBusy = errors.New("record is busy")
)

// Account status values.
const (
	StatusVerified             = "verified"
	StatusNeedsReauthorization = "needs_reauthorization"
)

// Store is everything the gateway persists. Implementations must be safe for
// concurrent use. A networked implementation must give the same guarantees:
// SignIn is atomic and two concurrent first sign-ins of one identity yield one
// user; TakeEphemeral returns a record to at most one caller.
type Store interface {
	// SignIn resolves an identity (issuer, subject) to a user and records the
	// account's latest profile and tokens, all in one transaction:
	//   - a known identity updates its account and returns its user (or, when
	//     in.LinkToUser names another user, fails with ErrIdentityTaken);
	//   - an unknown identity is linked to in.LinkToUser when set; else the
	//     user holding its verified email, if any, is dealt with as
	//     SignIn.EmailLink decides: joined (a link by email, which revokes
	//     every session that user had), left alone, relieved of the address,
	//     or the sign-in refused with ErrEmailHeld; else it gets a new user.
	// Either way the account's email follows the rules of Emails: a verified
	// address is verified on the user only when it holds it.
	// The account's token set is replaced whole, or kept whole when the
	// sign-in brought no access token (see TokenSet.after); a half-written
	// one (TokenSet.Check) is refused.
	SignIn(ctx context.Context, in SignIn) (SignInResult, error)
	// User returns the user with this id.
	User(ctx context.Context, id string) (*User, error)
	// ExternalAccounts returns the user's linked accounts, oldest first.
	ExternalAccounts(ctx context.Context, userID string) ([]*ExternalAccount, error)
	// ExternalAccount returns one linked account.
	ExternalAccount(ctx context.Context, id string) (*ExternalAccount, error)
	// ExternalAccountByIdentity returns the account linked to the identity
	// (issuer, subject), or ErrNotFound when no user holds it.
	ExternalAccountByIdentity(ctx context.Context, issuer, subject string) (*ExternalAccount, error)
	// UpdateExternalAccount reads the account, calls fn with it and writes
	// what fn left, in one transaction (retried on conflict, so fn may run
	// more than once and must not have side effects). fn returning an error
	// aborts the update and UpdateExternalAccount returns that error: this is
	// the compare-and-swap of token refreshes (return ErrStale when the
	// account is not in the expected state). Identity fields (ID, UserID,
	// Issuer, Subject, CreatedAt) cannot be changed, and a half-written
	// token set (TokenSet.Check) is refused: nothing is written. A change
	// of the account's email follows the rules of Emails (trusting no
	// provider: it takes no address over).
	UpdateExternalAccount(ctx context.Context, id string, fn func(a *ExternalAccount) error) (*ExternalAccount, error)
	// DeleteExternalAccount unlinks an account of userID in one transaction:
	// the account, its identity and user indexes, its vouching for the
	// user's emails (an email no longer vouched by any account becomes
	// unverified and leaves the email index; the user's sessions that carry
	// it go on without it: see Emails), and the sessions signed in through
	// the account (Emails.Unlink), each with a session.revoked event. It returns
	// the account as it was and the ids of the sessions it ended, for
	// caches to forget. check is called inside the transaction with the
	// accounts that would remain; its error aborts the unlink and is
	// returned. An account of another user is ErrNotFound.
	DeleteExternalAccount(ctx context.Context, userID, accountID string, check func(remaining []*ExternalAccount) error) (gone *ExternalAccount, revoked []string, err error)

	// Users lists users, newest first unless q orders them otherwise, with
	// the total count of matches.
	Users(ctx context.Context, q UserQuery) ([]*User, int, error)
	// SearchUsers returns a page of the users that q.Prefix starts a term
	// of (see UserTerms, AccountTerms: an id, username, external id,
	// address, a name or any word of it, a linked account's subject), in
	// any case, newest first (then by id), with their number (see
	// UserMatches and Matches). It is served by a search index that every
	// change of a user or an account keeps in its own transaction: it
	// reads the index under the prefix, never every user.
	SearchUsers(ctx context.Context, q UserSearch) (UserMatches, error)
	// CreateUser creates a user without a linked account, as the backend
	// API does (see NewUser, which completes u), in one transaction: its
	// verified addresses are claimed for it in the email index, so that a
	// first sign-in asserting one links to it (SignIn.EmailLink). An
	// address, username or external id another user holds fails with
	// Taken. It records user.created.
	CreateUser(ctx context.Context, u *User) error
	// UpdateUser reads the user, calls fn with a copy and writes what fn
	// left (see the package's UpdateUser for what fn may change), in one
	// transaction retried on conflict, so fn may run more than once. A
	// username or external id another user holds fails with Taken. A user
	// the update bans loses every session in the same transaction
	// (session.revoked each); a change to the public metadata reaches the
	// copy every live session keeps. It records user.updated when the
	// user changed.
	UpdateUser(ctx context.Context, id string, fn func(u *User) error) (UserUpdate, error)
	// DeleteUser removes a user with all its accounts, sessions and indexes
	// in one transaction.
	DeleteUser(ctx context.Context, id string) error

	// CreateSession stores a new session; it expires at s.ExpiresAt. A
	// session whose verified address its user does not hold (any more:
	// User.Presents) is stored, and s left, without that address; one
	// whose AccountID names no account of its user (unlinked since) is
	// refused with ErrNotFound.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns a live session; expired and deleted ones are ErrNotFound.
	Session(ctx context.Context, id string) (*Session, error)
	// DeleteSession removes a session (sign-out, a new sign-in replacing it);
	// deleting a missing one is not an error. A live session's deletion
	// records a session.ended event.
	DeleteSession(ctx context.Context, id string) error
	// RevokeSession is DeleteSession for a session ended by someone else
	// than its holder (the API, "sign out other sessions"): it records a
	// session.revoked event instead.
	RevokeSession(ctx context.Context, id string) error
	// TouchSessions records that sessions were used, in one or a few
	// transactions: each live session's LastActiveAt and ExpiresAt move to
	// the touch's, each only forward (touches may arrive late and out of
	// order, from several gateways), and ExpiresAt never past AbandonAt. A session that is missing or has
	// expired is skipped: a touch never revives one. It records no event.
	TouchSessions(ctx context.Context, touches []SessionTouch) error
	// Sessions returns the user's live sessions.
	Sessions(ctx context.Context, userID string) ([]*Session, error)
	// AddUserAudit keeps an audit entry about the user e.UserID among the
	// user's latest UserAuditKeep, deleting older ones in the same
	// transaction; the user's deletion takes them along. An entry about a
	// user that is gone (or about no user) is not kept, and is no error.
	AddUserAudit(ctx context.Context, e audit.Entry) error
	// UserAudit returns up to limit of the user's latest audit entries
	// (AddUserAudit), newest first.
	UserAudit(ctx context.Context, userID string, limit int) ([]audit.Entry, error)
	// ActiveSessions returns how many sessions are live, to the hour: a
	// session counts until the end of the hour it expires in. It reads
	// counters that every change of a session keeps (see ExpiryHour), never
	// the sessions.
	ActiveSessions(ctx context.Context) (int, error)

	// CreateRedirectURL records a native redirect URL; creating a URL that
	// exists returns the existing record with ErrExists.
	CreateRedirectURL(ctx context.Context, url string) (*RedirectURL, error)
	// RedirectURLs returns a page of the recorded redirect URLs, oldest
	// first, and how many there are in all.
	RedirectURLs(ctx context.Context, q RedirectURLQuery) ([]*RedirectURL, int, error)
	// RedirectURLsVersion is a number that changes whenever a redirect URL is
	// created, imported or deleted, by any gateway sharing the store: a
	// reader that keeps the list compiled in memory reads the list again
	// when it moved.
	RedirectURLsVersion(ctx context.Context) (int64, error)
	// RedirectURL returns one redirect URL.
	RedirectURL(ctx context.Context, id string) (*RedirectURL, error)
	// DeleteRedirectURL removes one redirect URL.
	DeleteRedirectURL(ctx context.Context, id string) error

	// PutEphemeral stores a short-lived opaque record (pending flow state,
	// nonces) under kind/id for ttl.
	PutEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error
	// TakeEphemeral returns and deletes the record in one step: of many
	// concurrent callers at most one gets it; the others get ErrNotFound.
	TakeEphemeral(ctx context.Context, kind, id string) ([]byte, error)
	// CreateEphemeral is PutEphemeral for a record that must not exist yet:
	// when a live record is under kind/id it changes nothing and returns
	// ErrExists, so of many concurrent callers exactly one creates it (a
	// token id that may be used once).
	CreateEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error

	// Events returns up to limit events recorded after the event afterID
	// ("" for the oldest one kept), oldest first. Every change above records
	// its events in its own transaction (see Event), and event ids grow in
	// the order their transactions commit: a reader that has seen an event
	// has seen every earlier one, so a consumer's position is the id of the
	// last event it handled.
	Events(ctx context.Context, afterID string, limit int) ([]*Event, error)
	// DeleteEventsBefore deletes the events whose id sorts before id (the
	// outbox's retention: what every consumer has handled).
	DeleteEventsBefore(ctx context.Context, id string) error
	// GetMeta returns a value stored with PutMeta; a missing one is
	// ErrNotFound. Meta values are a small durable key-value space for the
	// store's consumers (the webhook dispatcher's delivery state).
	GetMeta(ctx context.Context, name string) ([]byte, error)
	// PutMeta stores value under name, replacing any previous value. name is
	// 1–200 bytes without NUL.
	PutMeta(ctx context.Context, name string, value []byte) error

	// Close releases the store.
	Close() error
}

// RedirectURL is a URL that native apps may be sent back to (ru_…).
type RedirectURL struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// RedirectURLQuery pages Store.RedirectURLs.
type RedirectURLQuery struct {
	Limit  int // 0 lists them all
	Offset int
}

// Paging bounds of Users (UserQuery.Page).
const (
	defaultUsersLimit = 10
	maxUsersLimit     = 500
)

// UserQuery filters and pages Store.Users.
type UserQuery struct {
	// Email, when set, matches users holding this address (any case).
	Email string
	// Filter, when set, narrows the list further (see UserFilter).
	Filter *UserFilter
	// OrderBy is a field (created_at, updated_at, last_sign_in_at,
	// last_active_at, email_address, username, first_name, last_name)
	// after "+" (ascending, the default) or "-"; empty is -created_at,
	// newest first. See ValidUserOrder.
	OrderBy string
	Limit   int // default 10, at most 500
	Offset  int
}

// Page returns q's limit and offset within their bounds: a limit of 1 to
// 500 (default 10), an offset of 0 or more.
func (q UserQuery) Page() (limit, offset int) {
	limit = q.Limit
	if limit <= 0 {
		limit = defaultUsersLimit
	}
	return min(limit, maxUsersLimit), max(q.Offset, 0)
}

// Indexed reports whether q is served by the stores' indexes (no Filter,
// the default order), rather than by SelectUsers over every candidate.
func (q UserQuery) Indexed() bool {
	return q.Filter == nil && (q.OrderBy == "" || q.OrderBy == "-created_at")
}

// UserUpdate is the outcome of Store.UpdateUser.
type UserUpdate struct {
	User    *User
	Changed bool
	// RevokedSessions are the sessions a ban ended, for caches to forget.
	RevokedSessions []string
}

// SignIn is the input of Store.SignIn.
type SignIn struct {
	// Account carries the identity (Provider, Issuer, Subject), the profile,
	// the approved scopes and the token set; ID and UserID are assigned by
	// the store.
	Account ExternalAccount
	// LinkToUser, when set, links the identity to this existing user
	// (connect while signed in).
	LinkToUser string
	// LinkByEmail, when set, lets an unknown identity join the user who
	// holds the same verified email, and names the providers trusted to
	// vouch for that: it reports whether a provider's verified addresses may
	// link sign-ins (the provider's link_by_email). Both the sign-in's own
	// provider and a provider that vouched for the holder's address must be
	// trusted (see EmailLink). On every kind of sign-in (a connect too), an
	// account at a trusted provider takes its verified address over from a
	// holder no trusted provider vouches for (see Emails). Nil links
	// nothing by email and takes nothing over.
	LinkByEmail func(provider string) bool
	// Admit, when set, is asked whether the user the identity resolves to
	// may sign in, with the user and all their linked accounts as the
	// sign-in leaves them (the identity's account refreshed or added, its
	// email merged in). An error aborts the sign-in: nothing is written, no
	// user is created, and SignIn returns the error wrapped.
	Admit func(u *User, accounts []*ExternalAccount) error
	// Now is the time of the sign-in.
	Now time.Time

	// emailInvalid: Account.Email was not an address (CleanEmail), so the
	// sign-in asserts none.
	emailInvalid bool
}

// SignInResult is the outcome of Store.SignIn.
type SignInResult struct {
	User           *User
	Account        *ExternalAccount
	UserCreated    bool
	AccountCreated bool
	// LinkedByEmail reports a link by email: the identity joined an
	// existing user who holds the same verified address. Every session that
	// user had was revoked in the same transaction (session.revoked events).
	LinkedByEmail bool
	// RevokedSessions lists every session the sign-in ended, for caches to
	// forget: the holder's at a link by email, and those that carried an
	// address another user took over (see Emails). Sessions of the user
	// that carried an address it gave up were rewritten without it: caches
	// forget the user's sessions after a sign-in.
	RevokedSessions []string
	// Relieved lists the other users the sign-in took a verified address
	// from (a take-over, see Emails), for caches to forget.
	Relieved []string
	// EmailInvalid reports that the provider asserted an email that is not
	// a plain address (CleanEmail): the sign-in went on as if it asserted
	// none, and the caller logs it.
	EmailInvalid bool
}

// ExternalAccount is an identity at a provider linked to a user. Its id looks
// like eac_…. The identity key is (Issuer, Subject), never the email.
type ExternalAccount struct {
	ID             string   `json:"id"`
	UserID         string   `json:"user_id"`
	Provider       string   `json:"provider"`
	Issuer         string   `json:"issuer"`
	Subject        string   `json:"subject"`
	Email          string   `json:"email,omitempty"`
	EmailVerified  bool     `json:"email_verified,omitempty"`
	Name           string   `json:"name,omitempty"`
	Username       string   `json:"username,omitempty"`
	ImageURL       string   `json:"image_url,omitempty"`
	ApprovedScopes []string `json:"approved_scopes,omitempty"`
	// Groups are the groups the provider asserted at the last sign-in (its
	// groups mapping; none without one).
	Groups    []string  `json:"groups,omitempty"`
	Tokens    TokenSet  `json:"tokens"`
	Status    string    `json:"status"`
	Label     string    `json:"label,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// TokenSet is what a provider's token endpoint returned for an account: one
// grant, written whole, and how refreshing it is going. An account signed in
// without a grant (a native app's bare ID token) holds an empty set; a
// sign-in with a grant replaces it, so a new grant starts with no failures.
type TokenSet struct {
	AccessToken  string    `json:"access_token,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	IDToken      string    `json:"id_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitempty"`
	// ClientID is the client the grant was issued to when it is not the
	// provider's client_id (a native app's apple bundle id): refreshing and
	// revoking it take that client.
	ClientID string `json:"client_id,omitempty"`
	// IssuedAt is when the provider issued AccessToken, from the expires_in
	// it answered with: Expiry - IssuedAt is the token's lifetime. Zero when
	// unknown (no expires_in, or stored before it was recorded).
	IssuedAt time.Time `json:"issued_at,omitzero"`
	// RefreshFailures counts the refreshes that failed in a row (the provider
	// was down, slow or answered garbage); a successful refresh clears it.
	RefreshFailures int `json:"refresh_failures,omitempty"`
	// RetryAt is, after a failed refresh, when the next one may be tried;
	// zero when none failed.
	RetryAt time.Time `json:"retry_at,omitzero"`
}

// Check refuses a half-written token set: a refresh token or an expiry
// without the access token they belong to. Every Store implementation
// refuses to write one (sign-in, update, import) and reports one in Check.
func (t TokenSet) Check() error {
	if t.AccessToken == "" && (t.RefreshToken != "" || !t.Expiry.IsZero()) {
		return errors.New("a half-written token set (no access token beside its refresh token or expiry)")
	}
	return nil
}

// after returns the token set an account holds after a sign-in that brought
// next. A sign-in that brought no access token brought no grant (a native
// app's bare ID token): the held set stays whole. Otherwise next replaces
// it, keeping the held refresh token when next has none and is of the same
// client: most providers issue one only at consent, so none means
// "unchanged", not "revoked"; another client's refresh token would not
// refresh next's access token.
func (t TokenSet) after(next TokenSet) TokenSet {
	if next.AccessToken == "" {
		return t
	}
	if next.ClientID == t.ClientID {
		next.RefreshToken = cmp.Or(next.RefreshToken, t.RefreshToken)
	}
	return next
}

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewID returns prefix + "_" + 26 random characters (128 bits).
func NewID(prefix string) string {
	var b [16]byte
	rand.Read(b[:]) // never fails (Go 1.24+)
	return prefix + "_" + idEncoding.EncodeToString(b[:])
}
