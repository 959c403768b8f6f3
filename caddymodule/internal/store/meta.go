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

// metaInstanceID names the store's instance id (InstanceID).
const metaInstanceID = "instance_id"

// InstanceID returns the id of the socialgate instance that the store
// holds (ins_…), created at the first call: every gateway sharing the store
// names the same instance (webhooks carry it, as Clerk's instance_id).
// Gateways that create it at the same moment each read back the last one
// written.
func InstanceID(ctx context.Context, st MetaStore) (string, error) {
	id, err := st.GetMeta(ctx, metaInstanceID)
	if errors.Is(err, ErrNotFound) {
		if err = st.PutMeta(ctx, metaInstanceID, []byte(NewID("ins"))); err == nil {
			id, err = st.GetMeta(ctx, metaInstanceID)
		}
	}
	if err != nil {
		return "", fmt.Errorf("reading the instance id: %w", err)
	}
	return string(id), nil
}
