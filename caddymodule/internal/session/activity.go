package session

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// maxActivityGranularity is the coarsest a session's activity is recorded:
// at most one store write per session and minute, however busy it is.
const maxActivityGranularity = time.Minute

// maxPending bounds the sessions whose activity waits for a flush; past
// it, a flush is asked for at once.
const maxPending = 200_000

// activity records, in memory, which sessions were used, and writes that to
// the store in batches off the request path (RunActivity). A nil *activity
// records nothing: sessions then end only at their absolute lifetime.
type activity struct {
	idle  time.Duration
	every time.Duration // the granularity: idle/20, at most maxActivityGranularity

	mu      sync.RWMutex
	pending map[string]store.SessionTouch // by session id
	flush   chan struct{}                 // asks for an early flush
}

// WithIdleTimeout ends sessions unused for idle, on every gateway sharing
// the store: each session's expiry is its last activity plus idle, never
// past its lifetime. Activity is written at most once per idle/20 (and per
// minute) per session, in batches, so a session may end up to twice that
// before idle has passed since its true last use, never after. Zero turns
// the idle timeout off. Call it before the manager serves requests.
func (m *Manager) WithIdleTimeout(idle time.Duration) *Manager {
	if idle > 0 {
		m.activity = &activity{idle: idle, every: min(idle/20, maxActivityGranularity),
			pending: map[string]store.SessionTouch{}, flush: make(chan struct{}, 1)}
	}
	return m
}

// expiry is when s ends if it is not used after at: its last activity plus
// the idle timeout, never past its absolute end.
func (m *Manager) expiry(s *store.Session, at time.Time) time.Time {
	end := s.AbandonAt
	if end.IsZero() {
		end = s.CreatedAt.Add(m.lifetime)
	}
	if a := m.activity; a != nil && at.Add(a.idle).Before(end) {
		return at.Add(a.idle)
	}
	return end
}

// note records that s was used now, when its recorded activity is older
// than the granularity and no use since is pending: the store learns of it
// at the next flush (and the store's cache with it). A session that the
// store would end before that flush (its idle time nearly over) asks for
// the flush at once, so that a use at the end of the idle timeout keeps it.
func (a *activity) note(m *Manager, s *store.Session) {
	if a == nil {
		return
	}
	now := m.now()
	if now.Sub(s.LastActiveAt) < a.every {
		return
	}
	a.mu.RLock()
	p, known := a.pending[s.ID]
	a.mu.RUnlock()
	if known && now.Sub(p.At) < a.every {
		return
	}
	t := store.SessionTouch{ID: s.ID, At: now, ExpiresAt: m.expiry(s, now)}
	a.mu.Lock()
	_, known = a.pending[s.ID]
	if known || len(a.pending) < maxPending {
		a.pending[s.ID] = t
	}
	flush := len(a.pending) >= maxPending || s.ExpiresAt.Sub(now) < 2*a.every
	a.mu.Unlock()
	if flush {
		select {
		case a.flush <- struct{}{}:
		default:
		}
	}
}

// take returns the pending touches and starts a new batch.
func (a *activity) take() []store.SessionTouch {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.pending) == 0 {
		return nil
	}
	out := make([]store.SessionTouch, 0, len(a.pending))
	for _, t := range a.pending {
		out = append(out, t)
	}
	clear(a.pending)
	return out
}

// RunActivity writes the recorded activity to the store every granularity
// until stop is called; stop writes what is left, then returns. A batch the
// store refuses is logged and dropped: its sessions may end early, never
// late. Without an idle timeout it does nothing.
func (m *Manager) RunActivity(logger *zap.Logger) (stop func()) {
	a := m.activity
	if a == nil {
		return func() {}
	}
	quit, done := make(chan struct{}), make(chan struct{})
	flush := func() { m.flushActivity(logger) }
	go func() {
		defer close(done)
		tick := time.NewTicker(a.every)
		defer tick.Stop()
		for {
			select {
			case <-quit:
				flush()
				return
			case <-tick.C:
			case <-a.flush:
			}
			flush()
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() { close(quit) })
		<-done
	}
}

// flushActivity writes the recorded activity to the store.
func (m *Manager) flushActivity(logger *zap.Logger) {
	touches := m.activity.take()
	if len(touches) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.store.TouchSessions(ctx, touches); err != nil {
		logger.Warn("recording session activity failed", zap.Int("sessions", len(touches)), zap.Error(err))
	}
}
