package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// accountColumns are what decodeAccount reads, in order.
const accountColumns = `record, tokens`

// ExternalAccount implements store.Store.ExternalAccount.
func (s *Store) ExternalAccount(ctx context.Context, id string) (*store.ExternalAccount, error) {
	if !store.ValidID(id) {
		return nil, fmt.Errorf("loading account: %w", store.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var record, tokens []byte
	err := s.pool.QueryRow(ctx, `SELECT `+accountColumns+` FROM external_accounts WHERE id = $1`, id).Scan(&record, &tokens)
	if err != nil {
		return nil, fmt.Errorf("loading account %s: %w", id, notFound(err))
	}
	a, err := s.decodeAccount(id, record, tokens)
	if err != nil {
		return nil, fmt.Errorf("loading account %s: %w", id, err)
	}
	return a, nil
}

// ExternalAccountByIdentity implements store.Store.ExternalAccountByIdentity.
func (s *Store) ExternalAccountByIdentity(ctx context.Context, issuer, subject string) (*store.ExternalAccount, error) {
	if !store.ValidIdentityLookup(issuer, subject) {
		return nil, fmt.Errorf("loading account by identity: %w", store.ErrNotFound)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var id string
	var record, tokens []byte
	err := s.pool.QueryRow(ctx, `SELECT id, `+accountColumns+` FROM external_accounts WHERE issuer = $1 AND subject = $2`,
		issuer, subject).Scan(&id, &record, &tokens)
	if err != nil {
		return nil, fmt.Errorf("loading account by identity: %w", notFound(err))
	}
	a, err := s.decodeAccount(id, record, tokens)
	if err != nil {
		return nil, fmt.Errorf("loading account by identity: %w", err)
	}
	return a, nil
}

// ExternalAccounts implements store.Store.ExternalAccounts: the user's
// accounts, oldest first.
func (s *Store) ExternalAccounts(ctx context.Context, userID string) ([]*store.ExternalAccount, error) {
	if !store.ValidID(userID) {
		return nil, nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	accs, err := s.accountsOf(ctx, s.pool, userID)
	if err != nil {
		return nil, fmt.Errorf("listing accounts of user %s: %w", userID, err)
	}
	return accs, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (s *Store) accountsOf(ctx context.Context, q querier, userID string) ([]*store.ExternalAccount, error) {
	rows, err := q.Query(ctx, `SELECT id, `+accountColumns+` FROM external_accounts
		WHERE user_id = $1 ORDER BY created_ns, id`, userID)
	if err != nil {
		return nil, err
	}
	var accs []*store.ExternalAccount
	for rows.Next() {
		var id string
		var record, tokens []byte
		if err := rows.Scan(&id, &record, &tokens); err != nil {
			return nil, err
		}
		a, err := s.decodeAccount(id, record, tokens)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("loading account %s: %w", id, err)
		}
		accs = append(accs, a)
	}
	return accs, rows.Err()
}

// lockAccount reads and row-locks an account of userID; the caller holds
// the user's lock already. Another user's account is ErrNotFound.
func (s *Store) lockAccount(ctx context.Context, tx pgx.Tx, id, userID string) (*store.ExternalAccount, error) {
	var record, tokens []byte
	err := tx.QueryRow(ctx, `SELECT `+accountColumns+` FROM external_accounts
		WHERE id = $1 AND user_id = $2 FOR NO KEY UPDATE`, id, userID).Scan(&record, &tokens)
	if err != nil {
		return nil, notFound(err)
	}
	return s.decodeAccount(id, record, tokens)
}

func (s *Store) insertAccount(ctx context.Context, tx pgx.Tx, a *store.ExternalAccount) error {
	record, tokens, err := s.encodeAccount(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO external_accounts (id, user_id, issuer, subject, created_ns, record, tokens)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, a.ID, a.UserID, a.Issuer, a.Subject, a.CreatedAt.UnixNano(), record, tokens)
	return err
}

// saveAccount writes the account's record and tokens; its identity columns
// never change.
func (s *Store) saveAccount(ctx context.Context, tx pgx.Tx, a *store.ExternalAccount) error {
	record, tokens, err := s.encodeAccount(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE external_accounts SET record = $2, tokens = $3 WHERE id = $1`, a.ID, record, tokens)
	return err
}

// encodeAccount splits an account into its record, without the tokens, and
// its sealed token set.
func (s *Store) encodeAccount(a *store.ExternalAccount) (record, tokens []byte, err error) {
	plain, err := json.Marshal(a.Tokens)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding tokens: %w", err)
	}
	bare := *a
	bare.Tokens = store.TokenSet{}
	record, err = json.Marshal(&bare)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding account: %w", err)
	}
	return record, s.sealer.seal(plain, tokensAAD(a.ID)), nil
}

func (s *Store) decodeAccount(id string, record, tokens []byte) (*store.ExternalAccount, error) {
	var a store.ExternalAccount
	if err := json.Unmarshal(record, &a); err != nil {
		return nil, fmt.Errorf("decoding record: %w", err)
	}
	plain, err := s.sealer.open(tokens, tokensAAD(id))
	if err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}
	if err := json.Unmarshal(plain, &a.Tokens); err != nil {
		return nil, fmt.Errorf("decoding tokens: %w", err)
	}
	return &a, nil
}

func tokensAAD(accountID string) string { return "tokens/" + accountID }
