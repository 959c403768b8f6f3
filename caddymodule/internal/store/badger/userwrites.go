package badger

import (
	"encoding/json"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// prefixHandle indexes the values unique among users:
// idx/handle/<kind>/<value> holds the id of the user who has it.
const prefixHandle = "idx/handle/"

func handleKey(kind, value string) []byte { return []byte(prefixHandle + kind + "/" + value) }

// allUsers reads every user, for store.SelectUsers.
func allUsers(txn *badger.Txn) ([]*store.User, error) {
	var out []*store.User
	opts := badger.DefaultIteratorOptions
	opts.Prefix = []byte(prefixUser)
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var u store.User
		if err := it.Item().Value(func(v []byte) error { return json.Unmarshal(v, &u) }); err != nil {
			return nil, fmt.Errorf("decoding user %s: %w", it.Item().Key(), err)
		}
		out = append(out, &u)
	}
	return out, nil
}
