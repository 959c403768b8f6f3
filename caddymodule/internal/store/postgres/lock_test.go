package postgres

import (
	"context"
	"testing"
)

// TryLock's locks are held across gateways, once each (this gateway
// included), all on one connection that goes back to the pool when the
// last is given back.
func TestTryLock_OneHolderPerNameOnOneConnection(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	ctx := context.Background()
	try := func(s *Store, name string, want bool) {
		t.Helper()
		if got, err := s.TryLock(ctx, name); err != nil || got != want {
			t.Fatalf("TryLock(%s) = %v, %v; want %v", name, got, err, want)
		}
	}
	try(a, "webhook.endpoint.x", true)
	try(b, "webhook.endpoint.x", false)
	try(a, "webhook.endpoint.x", false) // one holder within a gateway too
	try(a, "webhook.endpoint.y", true)
	try(b, "webhook.endpoint.z", true)
	if n := a.pool.Stat().AcquiredConns(); n != 1 {
		t.Errorf("two locks hold %d connections, want 1", n)
	}
	a.Unlock("webhook.endpoint.x")
	try(b, "webhook.endpoint.x", true)
	a.Unlock("webhook.endpoint.y")
	a.Unlock("webhook.endpoint.y") // given back already: nothing
	if n := a.pool.Stat().AcquiredConns(); n != 0 || len(a.lockSlots) != 0 {
		t.Errorf("with no lock held, %d connections and %d lock slots are held, want none", n, len(a.lockSlots))
	}
	try(a, "webhook.endpoint.y", true)
	// Close waits for the connection of the locks still held.
	a.Unlock("webhook.endpoint.y")
	b.Unlock("webhook.endpoint.x")
	b.Unlock("webhook.endpoint.z")
}
