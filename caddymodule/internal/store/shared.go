package store

import (
	"context"
	"time"
)

// Shared is a store that several gateways open at once (PostgreSQL): they
// take turns through locks all of them respect. The token engine refreshes
// an account under its AccountLocker lock, and the webhook dispatcher
// delivers to an endpoint under its Locker lock; a store that is not Shared
// serves one gateway, whose in-process locks suffice. Implementations and
// wrappers state it with a compile-time guard (var _ store.Shared = …), so
// that a signature drift cannot silently drop a lock.
type Shared interface {
	Store
	AccountLocker
	Locker
}

// AccountLocker refreshes an account under a lock every gateway respects
// (PostgreSQL's row lock), and writes fn's changes before giving the lock
// back: see postgres.Store.RefreshExternalAccount. Waiting longer than wait
// for the lock fails with ErrBusy.
type AccountLocker interface {
	RefreshExternalAccount(ctx context.Context, id string, wait time.Duration, fn func(ctx context.Context, a *ExternalAccount) error) (*ExternalAccount, error)
}

// Locker holds named locks shared by every gateway on the store: a gateway
// delivers to a webhook endpoint only while it holds that endpoint's lock,
// so no event goes to an endpoint twice at once.
type Locker interface {
	// TryLock takes the lock called name when no one holds it, and
	// reports whether it did.
	TryLock(ctx context.Context, name string) (bool, error)
	// Unlock gives back a lock that TryLock took.
	Unlock(name string)
}

// Unwrap returns the store under any wrappers of st (the cache), for what
// only an implementation offers and that changes no record a wrapper holds:
// an invariant check, a backup. A wrapper says what it wraps with an
// Unwrap() Store method.
func Unwrap(st Store) Store {
	for {
		w, ok := st.(interface{ Unwrap() Store })
		if !ok {
			return st
		}
		st = w.Unwrap()
	}
}
