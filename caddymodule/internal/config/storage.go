package config

import (
	"errors"
	"fmt"

	"github.com/caddyserver/caddy/v2"
)

// PostgresStorage configures the PostgreSQL store.
type PostgresStorage struct {
	// DSN is the connection string (postgres://user:pass@host/db or
	// key=value pairs); {env.*} and {file.*} are expanded. Required.
	DSN string `json:"dsn"`
	// Secret, the same on every gateway of the database, is what the cookie
	// key, the token encryption key and the identity-token key derive from.
	// At least 32 characters; {env.*} and {file.*} are expanded. Required.
	Secret string `json:"secret"`
	// PreviousSecrets are older secrets during a rotation, newest first:
	// what their keys sealed, encoded or signed still opens, decodes and
	// verifies, while Secret's keys seal, encode and (after
	// identity_key_delay) sign. socialgate secret-rotate then seals the
	// stored values again under Secret and says when they can go: see
	// docs/secret-rotation.md. A changed secret without its predecessor
	// here is refused, since it cannot open the database. Default: none.
	PreviousSecrets []string `json:"previous_secrets,omitempty"`
	// MaxConns caps the connection pool. Default: 10.
	MaxConns int32 `json:"max_conns,omitempty"`
	// ConnectTimeout bounds opening one connection. Default: 5s.
	ConnectTimeout caddy.Duration `json:"connect_timeout,omitempty"`
}

// check refuses a PostgreSQL store without what it needs; a secret written
// out (not {env.*} or {file.*}) must be long enough already.
func (pg *PostgresStorage) check() error {
	switch {
	case pg.DSN == "":
		return errors.New("storage postgres: dsn is required, like dsn {env.DATABASE_URL}")
	case pg.Secret == "":
		return errors.New("storage postgres: secret is required: the same random secret of 32 or more characters on every gateway of the database, like secret {env.SOCIALGATE_SECRET}")
	}
	return checkWrittenSecrets("storage postgres: secret", append([]string{pg.Secret}, pg.PreviousSecrets...))
}

// Expand returns the connection string and the secrets, newest first, with
// their placeholders expanded.
func (pg *PostgresStorage) Expand(expand Expand) (dsn string, secrets [][]byte, err error) {
	if dsn, err = expandValue(expand, "storage postgres: dsn", pg.DSN); err != nil {
		return "", nil, err
	}
	if dsn == "" {
		return "", nil, errors.New("storage postgres: dsn is required")
	}
	for i, raw := range append([]string{pg.Secret}, pg.PreviousSecrets...) {
		s, err := expandValue(expand, fmt.Sprintf("storage postgres: secret %d", i+1), raw)
		if err != nil {
			return "", nil, err
		}
		secrets = append(secrets, []byte(s))
	}
	return dsn, secrets, nil
}
