package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

func redirectURLsCreateListDelete(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	a, err := e.st.CreateRedirectURL(ctx, "myapp://oauth-callback")
	if err != nil || !strings.HasPrefix(a.ID, "ru_") || a.URL != "myapp://oauth-callback" || a.CreatedAt.IsZero() {
		t.Fatalf("create: %v %v", a, err)
	}
	again, err := e.st.CreateRedirectURL(ctx, "myapp://oauth-callback")
	if !errors.Is(err, store.ErrExists) || again == nil || again.ID != a.ID {
		t.Fatalf("creating a URL twice: %v %v", again, err)
	}
	e.clk.Advance(time.Second)
	if _, err := e.st.CreateRedirectURL(ctx, "https://app.example.com/cb"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "a\x00b"} {
		if _, err := e.st.CreateRedirectURL(ctx, bad); err == nil {
			t.Errorf("CreateRedirectURL(%q) succeeded", bad)
		}
	}
	list, total, err := e.st.RedirectURLs(ctx, store.RedirectURLQuery{})
	if err != nil || total != 2 || len(list) != 2 || list[0].URL != "myapp://oauth-callback" || list[1].URL != "https://app.example.com/cb" {
		t.Fatalf("list: %v %v", list, err)
	}
	if got, err := e.st.RedirectURL(ctx, a.ID); err != nil || jsonOf(t, got) != jsonOf(t, a) {
		t.Fatalf("get: %v %v", got, err)
	}
	if err := e.st.DeleteRedirectURL(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.RedirectURL(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := e.st.DeleteRedirectURL(ctx, a.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	// The URL is free again.
	if b, err := e.st.CreateRedirectURL(ctx, "myapp://oauth-callback"); err != nil || b.ID == a.ID {
		t.Fatalf("re-create: %v %v", b, err)
	}
	e.checkClean()
}

func redirectURLsConcurrentCreatesMakeOne(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	const n = 20
	ids := make([]string, n)
	var created atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ru, err := e.st.CreateRedirectURL(ctx, "myapp://cb")
			switch {
			case err == nil:
				created.Add(1)
			case !errors.Is(err, store.ErrExists):
				t.Errorf("CreateRedirectURL: %v", err)
				return
			}
			ids[i] = ru.ID
		})
	}
	wg.Wait()
	if list, _, _ := e.st.RedirectURLs(ctx, store.RedirectURLQuery{}); created.Load() != 1 || len(list) != 1 {
		t.Fatalf("%d created, %d listed; want 1 and 1", created.Load(), len(list))
	}
	for i, id := range ids {
		if id != ids[0] {
			t.Errorf("caller %d got %s, caller 0 got %s", i, id, ids[0])
		}
	}
}

func redirectURLsPagesOldestFirstWithTheTotal(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	var urls []string
	for i := range 5 {
		u := fmt.Sprintf("app%d://cb", i)
		if _, err := e.st.CreateRedirectURL(ctx, u); err != nil {
			t.Fatal(err)
		}
		urls = append(urls, u)
		e.clk.Advance(time.Second)
	}
	for _, tt := range []struct {
		q    store.RedirectURLQuery
		want []string
	}{
		{store.RedirectURLQuery{}, urls},
		{store.RedirectURLQuery{Limit: 2}, urls[:2]},
		{store.RedirectURLQuery{Limit: 2, Offset: 2}, urls[2:4]},
		{store.RedirectURLQuery{Limit: 2, Offset: 4}, urls[4:]},
		{store.RedirectURLQuery{Offset: 3}, urls[3:]},
		{store.RedirectURLQuery{Limit: 1, Offset: 5}, nil},
		{store.RedirectURLQuery{Limit: 1, Offset: 99}, nil},
	} {
		list, total, err := e.st.RedirectURLs(ctx, tt.q)
		var got []string
		for _, ru := range list {
			got = append(got, ru.URL)
		}
		if err != nil || total != 5 || strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("RedirectURLs(%+v) = %v, total %d, %v; want %v, total 5", tt.q, got, total, err, tt.want)
		}
	}
}

// A reader that keeps the allowlist compiled reads it again when the
// version moved: every change must move it, and what changes nothing
// should not (each move costs every gateway a reload).
func redirectURLsVersionMovesWithEveryChange(t *testing.T, o opener) {
	e := o.env(t)
	ctx := context.Background()
	version := func() int64 {
		t.Helper()
		v, err := e.st.RedirectURLsVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v := version()
	ru, err := e.st.CreateRedirectURL(ctx, "myapp://cb")
	if err != nil {
		t.Fatal(err)
	}
	if version() == v {
		t.Fatal("creating a redirect URL did not move the version")
	}
	v = version()
	if _, err := e.st.CreateRedirectURL(ctx, "myapp://cb"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("creating it again: %v", err)
	}
	if version() != v {
		t.Error("creating an existing redirect URL moved the version")
	}
	if err := e.st.DeleteRedirectURL(ctx, ru.ID); err != nil {
		t.Fatal(err)
	}
	if version() == v {
		t.Fatal("deleting a redirect URL did not move the version")
	}
	v = version()
	if err := e.st.DeleteRedirectURL(ctx, ru.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting it again: %v", err)
	}
	e.signIn(store.SignIn{Account: account("vera", "vera@example.com", true)})
	if version() != v {
		t.Error("a deleted-again redirect URL or a sign-in moved the version")
	}
}
