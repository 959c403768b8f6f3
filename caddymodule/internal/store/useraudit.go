package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
)

// UserAuditKeep is how many audit entries each user keeps
// (Store.AddUserAudit): a new entry beyond it deletes the oldest.
const UserAuditKeep = 50

// AddUserAudit implements Store.AddUserAudit: in one transaction it locks
// the user (a deletion running alongside either comes first, and the entry
// is not kept, or after, and takes it along), keeps the entry and deletes
// the user's entries older than the newest UserAuditKeep.
func (r Rules) AddUserAudit(ctx context.Context, e audit.Entry) error {
	if !ValidID(e.UserID) {
		return nil
	}
	err := r.Backend.Update(ctx, func(tx Tx, _ *Outbox) error {
		if _, err := tx.LockUser(e.UserID); err != nil {
			return err
		}
		return tx.InsertAudit(e, UserAuditKeep)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("keeping an audit entry of user %s: %w", e.UserID, err)
	}
	return nil
}
