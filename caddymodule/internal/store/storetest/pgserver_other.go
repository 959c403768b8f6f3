//go:build !linux

package storetest

import "fmt"

func startPrivate() (*PostgresServer, error) {
	return nil, fmt.Errorf("%w: starting a private server is implemented for Linux only; set %s", ErrNoPostgres, EnvPostgresDSN)
}
