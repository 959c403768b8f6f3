package postgres

import (
	"context"
	"fmt"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// ActiveSessions implements store.Store.ActiveSessions: the sum of the
// session_counts rows from this hour on, which a trigger on sessions keeps
// (migration 0006).
func (s *Store) ActiveSessions(ctx context.Context) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(sum(n), 0) FROM session_counts WHERE hour >= $1`,
		store.ExpiryHour(s.now())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting sessions: %w", err)
	}
	return int(max(n, 0)), nil
}

// pruneSessionCounts deletes the session counts of past hours, after the
// cleanup deleted the expired sessions. An error waits for the next round:
// past counts are never read.
func (s *Store) pruneSessionCounts() {
	ctx, cancel := context.WithTimeout(context.Background(), s.queryTimeout)
	defer cancel()
	_, _ = s.pool.Exec(ctx, `DELETE FROM session_counts WHERE hour < $1`, store.ExpiryHour(s.now()))
}
