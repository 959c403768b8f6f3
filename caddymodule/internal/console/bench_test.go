package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/store/badger"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// benchGuard admits one session's requests as they come.
type benchGuard struct{ sess *store.Session }

func (g benchGuard) SignedIn(http.ResponseWriter, *http.Request, string) *store.Session {
	return g.sess
}
func (g benchGuard) PostedRecently(http.ResponseWriter, *http.Request) *store.Session { return g.sess }
func (g benchGuard) CSRFToken(*store.Session) string                                  { return "csrf" }
func (g benchGuard) ClientIP(*http.Request) string                                    { return "127.0.0.1" }

// BenchmarkUsersPage renders the console's user list (50 users, newest
// first), and the pages of searches (by address, id, the start of a name or
// of a word of it, external id), on a large Badger store: SOCIALGATE_BENCH_USERS users (default
// 100,000), built in SOCIALGATE_BENCH_STORE when set (and reused from there
// next time), else in a temporary directory. The server time of one page is
// ns/op; the whole request is served, the operator's admission included.
func BenchmarkUsersPage(b *testing.B) {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("SOCIALGATE_BENCH_USERS")); err == nil {
		n = v
	}
	dir := os.Getenv("SOCIALGATE_BENCH_STORE")
	if dir == "" {
		dir = b.TempDir()
	}
	st, err := badger.Open(badger.Options{Dir: dir, BulkLoad: true})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	_, have, err := st.Users(ctx, store.UserQuery{Limit: 1})
	if err != nil {
		b.Fatal(err)
	}
	fill(b, st, have, n)
	admins, _ := access.ParseMixed("admins", []string{"*@big.example"}, nil)
	renderer, err := ui.New(ui.Options{})
	if err != nil {
		b.Fatal(err)
	}
	c := New(Config{Prefix: "/_auth", Ops: ops.New(ops.Options{Store: st}), UI: renderer, Admins: admins})
	operator, _, err := st.Users(ctx, store.UserQuery{Email: "user0@big.example", Limit: 1})
	if err != nil || len(operator) != 1 {
		b.Fatalf("the operator: %v", err)
	}
	g := benchGuard{sess: &store.Session{ID: "sess_bench", UserID: operator[0].ID}}
	for _, bc := range []struct{ name, query string }{
		{"first", ""},
		{"offset_10000", "?offset=10000"},
		{"email", "?q=user12345@big.example"},
		{"id", "?q=" + operator[0].ID},
		{"name", "?q=User+12345"},        // the start of a name: 11 users
		{"name_word", "?q=99999"},        // the start of a name's word: 11 users
		{"name_everyone", "?q=user"},     // every user: walks them newest first
		{"external_id", "?q=ext-424242"}, // 1 user
		{"ext_1pct", "?q=ext-12"},        // 11,111 users, 1.1%: the slowest walk
	} {
		b.Run(fmt.Sprintf("%s/users=%d", bc.name, max(n, have)), func(b *testing.B) {
			for b.Loop() {
				w := httptest.NewRecorder()
				c.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/_auth/admin"+bc.query, nil), "/admin", g)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}

// fill adds users have to n-1 to st, each with one address vouched for by
// the API, by as many writers as there are CPUs.
func fill(b *testing.B, st *badger.Store, have, n int) {
	var next atomic.Int64
	next.Store(int64(have))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				u := &store.User{Name: fmt.Sprint("User ", i), ExternalID: fmt.Sprint("ext-", i),
					Emails: []store.EmailAddress{{Email: fmt.Sprintf("user%d@big.example", i)}}}
				if err := st.CreateUser(context.Background(), u); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
