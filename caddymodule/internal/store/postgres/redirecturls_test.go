package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Gateways on one database keep the redirect allowlist compiled and read it
// again when RedirectURLsVersion moved: a change through one gateway, an
// import, or an operator's own SQL must move it for all of them.
func TestRedirectURLsVersion_MovesForEveryGateway(t *testing.T) {
	dsn := freshDSN(t)
	a, b := openDSN(t, dsn, Options{}), openDSN(t, dsn, Options{})
	ctx := context.Background()
	version := func(s *Store) int64 {
		t.Helper()
		v, err := s.RedirectURLsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	steps := []struct {
		name   string
		change func()
	}{
		{"created through gateway a", func() {
			if _, err := a.CreateRedirectURL(ctx, "myapp://cb"); err != nil {
				t.Fatal(err)
			}
		}},
		{"imported through gateway a", func() {
			ru := &store.RedirectURL{ID: store.NewID("ru"), URL: "other://cb", CreatedAt: time.Now(), UpdatedAt: time.Now()}
			if _, err := a.Import(ctx, store.Record{RedirectURL: ru}); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted by an operator", func() { exec(t, a, `DELETE FROM redirect_urls WHERE url = 'other://cb'`) }},
	}
	for _, st := range steps {
		before := version(b)
		st.change()
		if version(b) == before {
			t.Errorf("%s: gateway b's version did not move", st.name)
		}
	}
	list, total, err := b.RedirectURLs(ctx, store.RedirectURLQuery{})
	if err != nil || total != 1 || len(list) != 1 || list[0].URL != "myapp://cb" {
		t.Fatalf("gateway b lists %v (total %d, %v), want myapp://cb", list, total, err)
	}
}
