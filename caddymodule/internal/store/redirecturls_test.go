package store

import (
	"context"
	"errors"
	"testing"
)

func TestRedirectURLs_CreateListDelete(t *testing.T) {
	b, err := Open(Options{InMemory: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	a, err := b.CreateRedirectURL(ctx, "myapp://oauth-callback")
	if err != nil || a.ID[:3] != "ru_" {
		t.Fatalf("create: %v %v", a, err)
	}
	again, err := b.CreateRedirectURL(ctx, "myapp://oauth-callback")
	if !errors.Is(err, ErrExists) || again.ID != a.ID {
		t.Fatalf("creating a URL twice: %v %v", again, err)
	}
	if _, err := b.CreateRedirectURL(ctx, "https://app.example.com/cb"); err != nil {
		t.Fatal(err)
	}
	list, err := b.RedirectURLs(ctx)
	if err != nil || len(list) != 2 || list[0].URL != "myapp://oauth-callback" {
		t.Fatalf("list: %v %v", list, err)
	}
	if got, err := b.RedirectURL(ctx, a.ID); err != nil || got.URL != a.URL {
		t.Fatalf("get: %v %v", got, err)
	}
	if err := b.DeleteRedirectURL(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RedirectURL(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := b.DeleteRedirectURL(ctx, a.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	// The URL is free again.
	if _, err := b.CreateRedirectURL(ctx, "myapp://oauth-callback"); err != nil {
		t.Fatal(err)
	}
	if problems, err := b.Check(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}
