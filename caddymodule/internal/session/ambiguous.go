package session

import (
	"context"
	"errors"
)

// Ambiguous is Lookup's error for a request whose cookies name two live
// sessions: one was planted beside the other, and the request has no
// session (errors.Is(err, ErrNoSession) holds). EndAmbiguous ends both.
type Ambiguous struct{ IDs [2]string }

func (a *Ambiguous) Error() string        { return "no session: cookies of two live sessions" }
func (a *Ambiguous) Is(target error) bool { return target == ErrNoSession }

// EndAmbiguous ends the two live sessions of an Ambiguous error from
// Lookup; any other err it leaves alone. Guard calls it on a protected
// route: a host under the cookie domain can set a session cookie for any
// path, even one the gateway's own pages never see, where the sign-in
// that ends the cookies it is sent cannot reach it, and the planted cookie
// would lock the person out for as long as its session lived. Ended, it is
// dead at its first use: the person signs in again, once. (The sign-out
// page lists both instead: it is where the person chooses.)
func (m *Manager) EndAmbiguous(ctx context.Context, err error) error {
	var a *Ambiguous
	if !errors.As(err, &a) {
		return nil
	}
	for _, id := range a.IDs {
		if err := m.store.DeleteSession(ctx, id); err != nil {
			return err
		}
		m.ended.add(id)
	}
	return nil
}
