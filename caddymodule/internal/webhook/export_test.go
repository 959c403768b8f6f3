package webhook

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// Round does at once, for a test, what the running dispatcher does in its
// goroutines: a turn at each endpoint in force, side by side, then the
// outbox's pruning when it is due. more reports that an endpoint has events
// waiting beyond a batch.
func (d *Dispatcher) Round(ctx context.Context) (more bool, err error) {
	eps, _ := d.endpoints()
	mores := make([]bool, len(eps))
	errs := make([]error, len(eps)+1)
	var wg sync.WaitGroup
	for i := range eps {
		wg.Go(func() {
			_, errs[i] = d.withLock(ctx, stateName(eps[i].Name), func() (err error) {
				mores[i], err = d.deliver(ctx, &eps[i])
				return err
			})
		})
	}
	wg.Wait()
	errs[len(eps)] = d.pruneIfDue(ctx)
	return slices.Contains(mores, true), errors.Join(errs...)
}
