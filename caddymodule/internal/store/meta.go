package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// MetaStore is the part of a Store that keeps meta values.
type MetaStore interface {
	GetMeta(ctx context.Context, name string) ([]byte, error)
	PutMeta(ctx context.Context, name string, value []byte) error
}

// FirstTime returns the time recorded under the meta value name: when
// something was first seen (a key first published, a secret first used).
// With none recorded, record stores now and returns it; otherwise ok is
// false. Gateways that record at the same moment each store their own now:
// the times differ by no more than their race.
func FirstTime(ctx context.Context, st MetaStore, name string, now time.Time, record bool) (t time.Time, ok bool, err error) {
	raw, err := st.GetMeta(ctx, name)
	switch {
	case err == nil:
		ns, perr := strconv.ParseInt(string(raw), 10, 64)
		if perr != nil {
			return time.Time{}, false, fmt.Errorf("meta %s is not a time: %q", name, raw)
		}
		return time.Unix(0, ns), true, nil
	case !errors.Is(err, ErrNotFound):
		return time.Time{}, false, err
	case !record:
		return time.Time{}, false, nil
	}
	if err := st.PutMeta(ctx, name, []byte(strconv.FormatInt(now.UnixNano(), 10))); err != nil {
		return time.Time{}, false, err
	}
	return now, true, nil
}
