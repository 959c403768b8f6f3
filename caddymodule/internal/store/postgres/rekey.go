package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// rekeyBatch is how many rows one Rekey query reads.
const rekeyBatch = 500

// rekeyPasses bounds Rekey's passes over the tables: a pass that still finds
// values under a previous key means someone keeps sealing under it.
const rekeyPasses = 3

// RekeyResult is what Rekey found and did.
type RekeyResult struct {
	// Resealed counts, by table, the values sealed again under the current
	// key.
	Resealed map[string]int
	// Unreadable counts, by table, the values that none of the keys opens:
	// sealed under a key Rekey was not given, or damaged. They are left as
	// they are.
	Unreadable map[string]int
	// StillPrevious counts the values that Rekey's last pass still found
	// under a previous key: a gateway whose current key is a previous one
	// keeps sealing under it.
	StillPrevious int
	// Done reports that the database no longer needs a previous key: every
	// value opens under the current key, and so does the key check, so Open
	// accepts the current key alone. Short-lived records are the exception
	// (see InFlight).
	Done bool
	// InFlight counts the live short-lived records (sign-ins in progress,
	// native nonces) of which some may be sealed under a previous key:
	// their ids are not stored, only their digests, so they cannot be
	// opened to be sealed again. The last of them expires at InFlightUntil.
	InFlight      int
	InFlightUntil time.Time
	// SessionsBefore counts the live sessions created before
	// RekeyOptions.SessionsBefore; the last of them expires at
	// SessionsBeforeUntil.
	SessionsBefore      int
	SessionsBeforeUntil time.Time
}

// RekeyOptions configure Rekey.
type RekeyOptions struct {
	// SessionsBefore, when set, has Rekey count the live sessions created
	// before it (RekeyResult.SessionsBefore): a caller whose cookies were
	// keyed by the previous secret tells their owners' fate with it.
	SessionsBefore time.Time
}

// sealedColumn is a column of sealed values and how its rows are bound.
type sealedColumn struct {
	table, key, value string
	aad               func(key []byte) string
}

var sealedColumns = []sealedColumn{
	{"external_accounts", "id", "tokens", func(k []byte) string { return tokensAAD(string(k)) }},
	{"sessions", "id_hash", "id_sealed", sessionAAD},
	{"events", "id", "body", func(k []byte) string { return eventAAD(string(k)) }},
}

// Rekey seals again under the current key (Options.EncryptionKey) every
// value that opens only under a previous one (Options.PreviousEncryptionKeys):
// provider tokens, session ids and events. It is safe while gateways serve:
// each value is replaced only if it is still the one read (a gateway that
// wrote meanwhile sealed its own value), and it can be stopped and run again
// at any point. Once a pass finds nothing left under a previous key and no
// value is unreadable, it seals the key check again, so the database then
// opens with the current key alone (Done).
func (s *Store) Rekey(ctx context.Context, opts RekeyOptions) (RekeyResult, error) {
	res := RekeyResult{Resealed: map[string]int{}, Unreadable: map[string]int{}}
	for pass := 1; ; pass++ {
		clear(res.Unreadable)
		found := 0
		for _, c := range sealedColumns {
			n, err := s.rekeyColumn(ctx, c, &res)
			if err != nil {
				return res, fmt.Errorf("re-keying %s: %w", c.table, err)
			}
			found += n
		}
		if found == 0 {
			break
		}
		if pass == rekeyPasses {
			res.StillPrevious = found
			break
		}
	}
	if err := s.countLeftBehind(ctx, opts, &res); err != nil {
		return res, err
	}
	if res.StillPrevious > 0 || len(res.Unreadable) > 0 {
		return res, nil
	}
	err := s.resealOne(ctx, `SELECT value FROM meta WHERE name = $1`, `UPDATE meta SET value = $2 WHERE name = $1 AND value = $3`,
		[]byte(keyCheckName), keyCheckAAD)
	if err != nil {
		return res, fmt.Errorf("re-keying the key check: %w", err)
	}
	res.Done = true
	return res, nil
}

// rekeyColumn reseals one column, rekeyBatch rows at a time in key order,
// and returns how many values it found under a previous key.
func (s *Store) rekeyColumn(ctx context.Context, c sealedColumn, res *RekeyResult) (int, error) {
	sel := fmt.Sprintf(`SELECT %[1]s, %[2]s FROM %[3]s WHERE %[1]s > $1 ORDER BY %[1]s LIMIT %[4]d`, c.key, c.value, c.table, rekeyBatch)
	upd := fmt.Sprintf(`UPDATE %[3]s SET %[2]s = $2 WHERE %[1]s = $1 AND %[2]s = $3`, c.key, c.value, c.table)
	found := 0
	after := []byte{}
	for {
		qctx, cancel := s.bound(ctx)
		rows, err := s.pool.Query(qctx, sel, after)
		var batch [][2][]byte
		if err == nil {
			batch, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2][]byte, error) {
				var kv [2][]byte
				return kv, row.Scan(&kv[0], &kv[1])
			})
		}
		cancel()
		if err != nil || len(batch) == 0 {
			return found, err
		}
		for _, kv := range batch {
			fresh, changed, err := s.sealer.reseal(kv[1], c.aad(kv[0]))
			if err != nil {
				res.Unreadable[c.table]++
				continue
			}
			if !changed {
				continue
			}
			found++
			qctx, cancel := s.bound(ctx)
			tag, err := s.pool.Exec(qctx, upd, kv[0], fresh, kv[1])
			cancel()
			if err != nil {
				return found, err
			}
			// A row written meanwhile holds its writer's value: the next
			// pass looks at it again.
			if tag.RowsAffected() == 1 {
				res.Resealed[c.table]++
			}
		}
		after = batch[len(batch)-1][0]
	}
}

// resealOne reseals the value that sel reads by key, replacing it with upd
// ($1 key, $2 new value, $3 old value) unless it changed meanwhile.
func (s *Store) resealOne(ctx context.Context, sel, upd string, key []byte, aad string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var sealed []byte
	if err := s.pool.QueryRow(ctx, sel, key).Scan(&sealed); err != nil {
		return err
	}
	fresh, changed, err := s.sealer.reseal(sealed, aad)
	if err != nil || !changed {
		return err
	}
	_, err = s.pool.Exec(ctx, upd, key, fresh, sealed)
	return err
}

// countLeftBehind counts what Rekey cannot reseal: live short-lived
// records, and the live sessions created before opts.SessionsBefore.
func (s *Store) countLeftBehind(ctx context.Context, opts RekeyOptions, res *RekeyResult) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	now := s.now().UnixNano()
	var until int64
	err := s.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(expires_ns), 0) FROM ephemeral WHERE expires_ns > $1`, now).
		Scan(&res.InFlight, &until)
	if err != nil {
		return fmt.Errorf("counting short-lived records: %w", err)
	}
	if res.InFlight > 0 {
		res.InFlightUntil = time.Unix(0, until)
	}
	if opts.SessionsBefore.IsZero() {
		return nil
	}
	err = s.pool.QueryRow(ctx, `SELECT count(*), coalesce(max(expires_ns), 0) FROM sessions
		WHERE expires_ns > $1 AND (record->>'created_at')::timestamptz < $2`, now, opts.SessionsBefore).
		Scan(&res.SessionsBefore, &until)
	if err != nil {
		return fmt.Errorf("counting sessions: %w", err)
	}
	if res.SessionsBefore > 0 {
		res.SessionsBeforeUntil = time.Unix(0, until)
	}
	return nil
}
