package badger

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// A user's audit entries: audit/<user id>/<order><8 random hex digits>,
// the entry's JSON, where <order> is createdOrder of its time, so that a
// user's entries sort newest first.
const prefixAudit = "audit/"

// InsertAudit writes the entry and deletes the user's entries after the
// newest keep.
func (x tx) InsertAudit(e audit.Entry, keep int) error {
	var nonce [4]byte
	rand.Read(nonce[:])
	prefix := prefixAudit + e.UserID + "/"
	if err := setJSON(x.txn, []byte(prefix+createdOrder(e.Time)+hex.EncodeToString(nonce[:])), e, 0); err != nil {
		return err
	}
	keys, err := collectKeys(x.txn, prefix, 0)
	if err != nil {
		return err
	}
	for _, k := range keys[min(keep, len(keys)):] {
		if err := x.txn.Delete([]byte(prefix + k)); err != nil {
			return err
		}
	}
	return nil
}

// deleteAudit deletes the user's audit entries.
func deleteAudit(txn *badger.Txn, userID string) error {
	keys, err := collectKeys(txn, prefixAudit+userID+"/", 0)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := txn.Delete([]byte(prefixAudit + userID + "/" + k)); err != nil {
			return err
		}
	}
	return nil
}

// UserAudit implements store.Store.UserAudit.
func (b *Store) UserAudit(ctx context.Context, userID string, limit int) ([]audit.Entry, error) {
	if !store.ValidID(userID) {
		return nil, nil
	}
	var out []audit.Entry
	err := b.view(ctx, func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = []byte(prefixAudit + userID + "/")
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid() && len(out) < limit; it.Next() {
			var e audit.Entry
			if err := it.Item().Value(func(val []byte) error { return json.Unmarshal(val, &e) }); err != nil {
				return fmt.Errorf("decoding an audit entry: %w", err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the audit entries of user %s: %w", userID, err)
	}
	return out, nil
}
