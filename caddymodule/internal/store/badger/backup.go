package badger

import (
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
)

// Backup writes a full backup of the store to w in Badger's own backup
// format (what `badger backup` writes and DB.Load reads), from one snapshot,
// while the store keeps serving. The backup holds the records decrypted:
// keep it as secret as the store's keys.
func (b *Store) Backup(w io.Writer) error {
	if _, err := b.db.Backup(w, 0); err != nil {
		return fmt.Errorf("backing up store: %w", err)
	}
	return nil
}

// Restore loads a backup written by Backup into a new Badger store in dir,
// encrypted with encryptionKey (the backed-up store's, from its keys). The
// directory must hold no store yet. A malformed or truncated backup is an
// error (Badger's Load panics on some: that is an error here too); what it
// loaded so far stays in dir.
func Restore(dir string, encryptionKey []byte, r io.Reader) (err error) {
	db, err := badger.Open(badger.DefaultOptions(dir).WithEncryptionKey(encryptionKey).WithIndexCacheSize(16 << 20).
		WithSyncWrites(true).WithLogger(nil))
	if err != nil {
		return fmt.Errorf("opening store %s: %w", dir, err)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("not a socialgate backup, or a truncated one: %v", p)
		}
		if cerr := db.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing store %s: %w", dir, cerr)
		}
	}()
	return db.Load(r, 16)
}
