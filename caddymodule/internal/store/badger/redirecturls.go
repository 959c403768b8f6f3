package badger

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Keys of redirect URLs: the record, and an index by URL so a URL is recorded once.
const (
	prefixRedirect    = "ru/"
	prefixRedirectURL = "idx/ru_url/"
)

// CreateRedirectURL implements store.Store.CreateRedirectURL.
func (b *Store) CreateRedirectURL(ctx context.Context, url string) (*store.RedirectURL, error) {
	if err := store.CheckRedirectURL(url); err != nil {
		return nil, fmt.Errorf("creating redirect URL: %w", err)
	}
	var out *store.RedirectURL
	err := b.update(ctx, func(txn *badger.Txn) error {
		id, err := getString(txn, []byte(prefixRedirectURL+url))
		if err == nil {
			var existing store.RedirectURL
			if err := getJSON(txn, []byte(prefixRedirect+id), &existing); err != nil {
				return err
			}
			out = &existing
			return store.ErrExists
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		now := b.now()
		ru := &store.RedirectURL{ID: store.NewID("ru"), URL: url, CreatedAt: now, UpdatedAt: now}
		if err := setJSON(txn, []byte(prefixRedirect+ru.ID), ru, 0); err != nil {
			return err
		}
		if err := txn.Set([]byte(prefixRedirectURL+url), []byte(ru.ID)); err != nil {
			return err
		}
		out = ru
		return nil
	})
	if errors.Is(err, store.ErrExists) {
		return out, store.ErrExists
	}
	if err != nil {
		return nil, fmt.Errorf("creating redirect URL: %w", err)
	}
	b.redirectVersion.Add(1)
	return out, nil
}

// RedirectURLs implements store.Store.RedirectURLs. The records have no index by
// creation: a page reads them all, which only the API's listing does.
func (b *Store) RedirectURLs(ctx context.Context, q store.RedirectURLQuery) ([]*store.RedirectURL, int, error) {
	var out []*store.RedirectURL
	err := b.view(ctx, func(txn *badger.Txn) error {
		return scan(txn, prefixRedirect, false, func(id string, val []byte) error {
			var ru store.RedirectURL
			if err := json.Unmarshal(val, &ru); err != nil {
				return fmt.Errorf("decoding redirect URL %s: %w", id, err)
			}
			out = append(out, &ru)
			return nil
		})
	})
	if err != nil {
		return nil, 0, fmt.Errorf("listing redirect URLs: %w", err)
	}
	slices.SortFunc(out, func(a, b *store.RedirectURL) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return page(out, q), len(out), nil
}

// page cuts the page q asks for out of all the records.
func page(all []*store.RedirectURL, q store.RedirectURLQuery) []*store.RedirectURL {
	from := min(max(q.Offset, 0), len(all))
	if q.Limit <= 0 {
		return all[from:]
	}
	return all[from:min(from+q.Limit, len(all))]
}

// RedirectURLsVersion implements store.Store.RedirectURLsVersion.
func (b *Store) RedirectURLsVersion(context.Context) (int64, error) {
	return b.redirectVersion.Load(), nil
}

// RedirectURL implements store.Store.RedirectURL.
func (b *Store) RedirectURL(ctx context.Context, id string) (*store.RedirectURL, error) {
	if !store.ValidID(id) {
		return nil, store.ErrNotFound
	}
	var ru store.RedirectURL
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, []byte(prefixRedirect+id), &ru) })
	if err != nil {
		return nil, err
	}
	return &ru, nil
}

// DeleteRedirectURL implements store.Store.DeleteRedirectURL.
func (b *Store) DeleteRedirectURL(ctx context.Context, id string) error {
	if !store.ValidID(id) {
		return store.ErrNotFound
	}
	err := b.update(ctx, func(txn *badger.Txn) error {
		var ru store.RedirectURL
		if err := getJSON(txn, []byte(prefixRedirect+id), &ru); err != nil {
			return err
		}
		if err := txn.Delete([]byte(prefixRedirect + id)); err != nil {
			return err
		}
		return txn.Delete([]byte(prefixRedirectURL + ru.URL))
	})
	if err == nil {
		b.redirectVersion.Add(1)
	}
	return err
}
