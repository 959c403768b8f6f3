package caddymodule

import (
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/internal/testkit"
)

// A reload that changes a pooled setting of the PostgreSQL store gets a
// store opened with the new settings, never the old one kept under the same
// DSN; the same settings share the open store.
func TestAcquirePostgres_AChangedSettingOpensANewStore(t *testing.T) {
	dsn := testkit.OwnPostgres(t)
	old := []byte("the-old-secret-of-the-cluster-0123456789")
	fresh := []byte("the-new-secret-of-the-cluster-9876543210")
	acquire := func(cfg config.PostgresStorage, secrets ...[]byte) *storeRef {
		t.Helper()
		ref, err := acquirePostgres(&cfg, dsn, secrets, zap.NewNop())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(ref.release)
		return ref
	}
	first := acquire(config.PostgresStorage{}, old)
	if same := acquire(config.PostgresStorage{}, old); same.openStore != first.openStore {
		t.Error("the same settings opened a second store")
	}
	for name, ref := range map[string]*storeRef{
		"max_conns":        acquire(config.PostgresStorage{MaxConns: 4}, old),
		"connect_timeout":  acquire(config.PostgresStorage{ConnectTimeout: caddy.Duration(time.Second)}, old),
		"a rotated secret": acquire(config.PostgresStorage{}, fresh, old),
	} {
		if ref.openStore == first.openStore {
			t.Errorf("a changed %s reuses the store opened with the old settings", name)
		}
	}
	_, err := acquirePostgres(&config.PostgresStorage{}, dsn, [][]byte{fresh}, zap.NewNop())
	if err == nil || !strings.Contains(err.Error(), "secret <new> <old>") {
		t.Errorf("a changed secret alone: %v", err)
	}
}
