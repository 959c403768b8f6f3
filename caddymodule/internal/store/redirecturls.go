package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Keys of redirect URLs: the record, and an index by URL so a URL is recorded once.
const (
	prefixRedirect    = "ru/"
	prefixRedirectURL = "idx/ru_url/"
)

// CreateRedirectURL implements Store.CreateRedirectURL.
func (b *Badger) CreateRedirectURL(ctx context.Context, url string) (*RedirectURL, error) {
	if url == "" || strings.ContainsRune(url, 0) {
		return nil, errors.New("creating redirect URL: the URL is empty or invalid")
	}
	var out *RedirectURL
	err := b.update(ctx, func(txn *badger.Txn) error {
		id, err := getString(txn, []byte(prefixRedirectURL+url))
		if err == nil {
			var existing RedirectURL
			if err := getJSON(txn, []byte(prefixRedirect+id), &existing); err != nil {
				return err
			}
			out = &existing
			return ErrExists
		}
		if !errors.Is(err, ErrNotFound) {
			return err
		}
		now := b.now()
		ru := &RedirectURL{ID: NewID("ru"), URL: url, CreatedAt: now, UpdatedAt: now}
		if err := setJSON(txn, []byte(prefixRedirect+ru.ID), ru, 0); err != nil {
			return err
		}
		if err := txn.Set([]byte(prefixRedirectURL+url), []byte(ru.ID)); err != nil {
			return err
		}
		out = ru
		return nil
	})
	if errors.Is(err, ErrExists) {
		return out, ErrExists
	}
	if err != nil {
		return nil, fmt.Errorf("creating redirect URL: %w", err)
	}
	b.redirectVersion.Add(1)
	return out, nil
}

// RedirectURLs implements Store.RedirectURLs. The records have no index by
// creation: a page reads them all, which only the API's listing does.
func (b *Badger) RedirectURLs(ctx context.Context, q RedirectURLQuery) ([]*RedirectURL, int, error) {
	var out []*RedirectURL
	err := b.view(ctx, func(txn *badger.Txn) error {
		return scan(txn, prefixRedirect, false, func(id string, val []byte) error {
			var ru RedirectURL
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
	slices.SortFunc(out, func(a, b *RedirectURL) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return q.page(out), len(out), nil
}

// page cuts the page q asks for out of all the records.
func (q RedirectURLQuery) page(all []*RedirectURL) []*RedirectURL {
	from := min(max(q.Offset, 0), len(all))
	if q.Limit <= 0 {
		return all[from:]
	}
	return all[from:min(from+q.Limit, len(all))]
}

// RedirectURLsVersion implements Store.RedirectURLsVersion.
func (b *Badger) RedirectURLsVersion(context.Context) (int64, error) {
	return b.redirectVersion.Load(), nil
}

// RedirectURL implements Store.RedirectURL.
func (b *Badger) RedirectURL(ctx context.Context, id string) (*RedirectURL, error) {
	if !validID(id) {
		return nil, ErrNotFound
	}
	var ru RedirectURL
	err := b.view(ctx, func(txn *badger.Txn) error { return getJSON(txn, []byte(prefixRedirect+id), &ru) })
	if err != nil {
		return nil, err
	}
	return &ru, nil
}

// DeleteRedirectURL implements Store.DeleteRedirectURL.
func (b *Badger) DeleteRedirectURL(ctx context.Context, id string) error {
	if !validID(id) {
		return ErrNotFound
	}
	err := b.update(ctx, func(txn *badger.Txn) error {
		var ru RedirectURL
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
