package ops

import (
	"context"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// maxActivityEvents bounds the events SignInsPerDay reads.
const maxActivityEvents = 200_000

// SignInsPerDay counts the sessions started on each of the last days UTC
// days up to now (today last), from the events the outbox still holds:
// without a webhook endpoint that retains them, only the few that wait for
// pruning. It reads at most 200,000 events; complete is false when it
// stopped there.
func (s *Service) SignInsPerDay(ctx context.Context, days int, now time.Time) (counts []int, complete bool, err error) {
	today := now.UTC().Truncate(24 * time.Hour)
	start := today.AddDate(0, 0, 1-days)
	counts = make([]int, days)
	after := store.EventsFrom(start)
	for read := 0; read < maxActivityEvents; {
		events, err := s.o.Store.Events(ctx, after, 1000)
		if err != nil {
			return nil, false, err
		}
		for _, e := range events {
			if e.Type != store.EventSessionCreated {
				continue
			}
			if day := int(e.CreatedAt.UTC().Sub(start) / (24 * time.Hour)); day >= 0 && day < days {
				counts[day]++
			}
		}
		if len(events) < 1000 {
			return counts, true, nil
		}
		read += len(events)
		after = events[len(events)-1].ID
	}
	return counts, false, nil
}

// ActiveSessions counts the live sessions, to the hour: a session counts
// until the end of the hour it expires in. It reads the store's counters
// (store.Store.ActiveSessions), not the sessions.
func (s *Service) ActiveSessions(ctx context.Context) (int, error) {
	return s.o.Store.ActiveSessions(ctx)
}

// Backlog counts the events after cursor (an endpoint's position, "" for
// the oldest kept), up to max; more is true when there are more.
func (s *Service) Backlog(ctx context.Context, cursor string, max int) (n int, more bool, err error) {
	events, err := s.o.Store.Events(ctx, cursor, max+1)
	if err != nil {
		return 0, false, err
	}
	return min(len(events), max), len(events) > max, nil
}
