package cache

import (
	"context"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Store is a store.Store that reads sessions, users and users' linked
// accounts through the cache: a record read less than its TTL ago is served
// from memory. Every other read goes to the store, and every write does,
// then forgets what it made stale. Each method is written out, so that a
// method added to store.Store does not compile here until it says what it
// makes stale.
type Store struct {
	c   *Cache
	ttl time.Duration
}

// Store returns a view of the cache whose reads serve records read less
// than ttl ago; with ttl 0 it reads every record from the store and caches
// nothing, and its writes still forget. A store that several gateways share
// (store.Shared: PostgreSQL) gives a view that is one too.
func (c *Cache) Store(ttl time.Duration) store.Store {
	v := &Store{c: c, ttl: ttl}
	if sh, ok := c.st.(store.Shared); ok {
		return &shared{Store: v, sh: sh}
	}
	return v
}

// Unwrap returns the store under the cache, for what only the
// implementation offers and changes nothing cached (an invariant check, a
// backup): see store.Unwrap.
func (v *Store) Unwrap() store.Store { return v.c.st }

// Session returns a live session, from memory when the view holds it.
func (v *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	now := v.c.now()
	if v.ttl <= 0 {
		return v.c.st.Session(ctx, id)
	}
	if s, ok := v.c.session(id, v.ttl, now); ok {
		return s, nil
	}
	gen := v.c.gen.Load()
	s, err := v.c.st.Session(ctx, id)
	if err == nil {
		s.CheckEmail() // once, not on each request that reads the address
		v.c.putSession(s, now, gen)
	}
	return s, err
}

// User returns a user, from memory when the view holds it.
func (v *Store) User(ctx context.Context, id string) (*store.User, error) {
	return cached(v, v.c.users, id, v.c.st.User, ctx)
}

// ExternalAccounts returns a user's linked accounts, from memory when the
// view holds them.
func (v *Store) ExternalAccounts(ctx context.Context, userID string) ([]*store.ExternalAccount, error) {
	return cached(v, v.c.accounts, userID, v.c.st.ExternalAccounts, ctx)
}

// cached reads the record of id from m, or from the store with read.
func cached[T any](v *Store, m map[string]entry[T], id string, read func(context.Context, string) (T, error), ctx context.Context) (T, error) {
	if v.ttl <= 0 {
		return read(ctx, id)
	}
	now := v.c.now()
	if x, ok := get(v.c, m, id, v.ttl, now); ok {
		return x, nil
	}
	gen := v.c.gen.Load()
	x, err := read(ctx, id)
	if err == nil {
		put(v.c, m, id, x, now, gen)
	}
	return x, err
}

// SignIn forgets the users it changed: the one signed in, the one linked
// to, and those it took an address from; and the sessions it ended.
func (v *Store) SignIn(ctx context.Context, in store.SignIn) (store.SignInResult, error) {
	res, err := v.c.st.SignIn(ctx, in)
	users := []string{in.LinkToUser}
	if res.User != nil {
		users = append(users, res.User.ID)
	}
	v.c.forget(res.RevokedSessions, append(users, res.Relieved...))
	return res, err
}

// UpdateExternalAccount forgets the account's user.
func (v *Store) UpdateExternalAccount(ctx context.Context, id string, fn func(a *store.ExternalAccount) error) (*store.ExternalAccount, error) {
	var user string
	a, err := v.c.st.UpdateExternalAccount(ctx, id, func(a *store.ExternalAccount) error {
		user = a.UserID
		return fn(a)
	})
	v.c.forget(nil, []string{user})
	return a, err
}

// DeleteExternalAccount forgets the user and the sessions it ended.
func (v *Store) DeleteExternalAccount(ctx context.Context, userID, accountID string, check func(remaining []*store.ExternalAccount) error) (*store.ExternalAccount, []string, error) {
	gone, revoked, err := v.c.st.DeleteExternalAccount(ctx, userID, accountID, check)
	v.c.forget(revoked, []string{userID})
	return gone, revoked, err
}

// DeleteUser forgets the user.
func (v *Store) DeleteUser(ctx context.Context, id string) error {
	err := v.c.st.DeleteUser(ctx, id)
	v.c.forget(nil, []string{id})
	return err
}

// DeleteSession forgets the session.
func (v *Store) DeleteSession(ctx context.Context, id string) error {
	err := v.c.st.DeleteSession(ctx, id)
	v.c.forget([]string{id}, nil)
	return err
}

// RevokeSession forgets the session.
func (v *Store) RevokeSession(ctx context.Context, id string) error {
	err := v.c.st.RevokeSession(ctx, id)
	v.c.forget([]string{id}, nil)
	return err
}

// TouchSessions gives the cached sessions their new activity.
func (v *Store) TouchSessions(ctx context.Context, touches []store.SessionTouch) error {
	if err := v.c.st.TouchSessions(ctx, touches); err != nil {
		return err
	}
	v.c.touch(touches)
	return nil
}

// CreateSession stores a new session: nothing cached can be older.
func (v *Store) CreateSession(ctx context.Context, s *store.Session) error {
	return v.c.st.CreateSession(ctx, s)
}

// CreateUser stores a new user, which takes no address from another:
// nothing cached can be older.
func (v *Store) CreateUser(ctx context.Context, u *store.User) error {
	return v.c.st.CreateUser(ctx, u)
}

// UpdateUser forgets the user (its sessions keep a copy of its public
// metadata) and the sessions a ban ended.
func (v *Store) UpdateUser(ctx context.Context, id string, fn func(u *store.User) error) (store.UserUpdate, error) {
	up, err := v.c.st.UpdateUser(ctx, id, fn)
	v.c.forget(up.RevokedSessions, []string{id})
	return up, err
}

// What follows reads or writes nothing the cache holds.

func (v *Store) ExternalAccount(ctx context.Context, id string) (*store.ExternalAccount, error) {
	return v.c.st.ExternalAccount(ctx, id)
}

func (v *Store) ExternalAccountByIdentity(ctx context.Context, issuer, subject string) (*store.ExternalAccount, error) {
	return v.c.st.ExternalAccountByIdentity(ctx, issuer, subject)
}

func (v *Store) Users(ctx context.Context, q store.UserQuery) ([]*store.User, int, error) {
	return v.c.st.Users(ctx, q)
}

func (v *Store) AddUserAudit(ctx context.Context, e audit.Entry) error {
	return v.c.st.AddUserAudit(ctx, e)
}

func (v *Store) UserAudit(ctx context.Context, userID string, limit int) ([]audit.Entry, error) {
	return v.c.st.UserAudit(ctx, userID, limit)
}

func (v *Store) ActiveSessions(ctx context.Context) (int, error) {
	return v.c.st.ActiveSessions(ctx)
}

func (v *Store) SearchUsers(ctx context.Context, q store.UserSearch) (store.UserMatches, error) {
	return v.c.st.SearchUsers(ctx, q)
}

func (v *Store) Sessions(ctx context.Context, userID string) ([]*store.Session, error) {
	return v.c.st.Sessions(ctx, userID)
}

func (v *Store) CreateRedirectURL(ctx context.Context, url string) (*store.RedirectURL, error) {
	return v.c.st.CreateRedirectURL(ctx, url)
}

func (v *Store) RedirectURLs(ctx context.Context, q store.RedirectURLQuery) ([]*store.RedirectURL, int, error) {
	return v.c.st.RedirectURLs(ctx, q)
}

func (v *Store) RedirectURLsVersion(ctx context.Context) (int64, error) {
	return v.c.st.RedirectURLsVersion(ctx)
}

func (v *Store) RedirectURL(ctx context.Context, id string) (*store.RedirectURL, error) {
	return v.c.st.RedirectURL(ctx, id)
}

func (v *Store) DeleteRedirectURL(ctx context.Context, id string) error {
	return v.c.st.DeleteRedirectURL(ctx, id)
}

func (v *Store) PutEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return v.c.st.PutEphemeral(ctx, kind, id, value, ttl)
}

func (v *Store) TakeEphemeral(ctx context.Context, kind, id string) ([]byte, error) {
	return v.c.st.TakeEphemeral(ctx, kind, id)
}

func (v *Store) CreateEphemeral(ctx context.Context, kind, id string, value []byte, ttl time.Duration) error {
	return v.c.st.CreateEphemeral(ctx, kind, id, value, ttl)
}

func (v *Store) Events(ctx context.Context, afterID string, limit int) ([]*store.Event, error) {
	return v.c.st.Events(ctx, afterID, limit)
}

func (v *Store) DeleteEventsBefore(ctx context.Context, id string) error {
	return v.c.st.DeleteEventsBefore(ctx, id)
}

func (v *Store) GetMeta(ctx context.Context, name string) ([]byte, error) {
	return v.c.st.GetMeta(ctx, name)
}

func (v *Store) PutMeta(ctx context.Context, name string, value []byte) error {
	return v.c.st.PutMeta(ctx, name, value)
}

// Close closes the store under the cache.
func (v *Store) Close() error { return v.c.st.Close() }

// shared is the view of a store that several gateways share: its refresh
// lock forgets the refreshed account's user too.
type shared struct {
	*Store
	sh store.Shared
}

// RefreshExternalAccount forgets the account's user.
func (v *shared) RefreshExternalAccount(ctx context.Context, id string, wait time.Duration, fn func(ctx context.Context, a *store.ExternalAccount) error) (*store.ExternalAccount, error) {
	var user string
	a, err := v.sh.RefreshExternalAccount(ctx, id, wait, func(ctx context.Context, a *store.ExternalAccount) error {
		user = a.UserID
		return fn(ctx, a)
	})
	v.c.forget(nil, []string{user})
	return a, err
}

func (v *shared) TryLock(ctx context.Context, name string) (bool, error) {
	return v.sh.TryLock(ctx, name)
}

func (v *shared) Unlock(name string) { v.sh.Unlock(name) }

// Interface guards
var (
	_ store.Store  = (*Store)(nil)
	_ store.Shared = (*shared)(nil)
)
