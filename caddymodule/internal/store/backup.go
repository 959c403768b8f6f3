package store

import (
	"fmt"
	"io"
)

// Backup writes a full backup of the store to w in Badger's own backup
// format (what `badger backup` writes and DB.Load reads), from one snapshot,
// while the store keeps serving. The backup holds the records decrypted:
// keep it as secret as the store's keys.
func (b *Badger) Backup(w io.Writer) error {
	if _, err := b.db.Backup(w, 0); err != nil {
		return fmt.Errorf("backing up store: %w", err)
	}
	return nil
}
