package session

import "sync"

// maxVerified bounds the remembered credentials; past it, they start over.
const maxVerified = 200_000

// verified remembers the session id of every cookie value and session
// token that verified, so that later requests skip the HMAC and the
// decryption. A value names a session, it does not vouch for it: the
// session is read (through the store's cache) every time. A nil *verified
// remembers nothing.
type verified struct {
	mu  sync.RWMutex
	ids map[string]string // cookie value or token → session id
}

func (v *verified) get(value string) (string, bool) {
	if v == nil {
		return "", false
	}
	v.mu.RLock()
	id, ok := v.ids[value]
	v.mu.RUnlock()
	return id, ok
}

func (v *verified) remember(value, id string) {
	if v == nil {
		return
	}
	v.mu.Lock()
	if len(v.ids) >= maxVerified {
		clear(v.ids)
	}
	v.ids[value] = id
	v.mu.Unlock()
}

// endedSessions remembers the ids of sessions that have ended (the store
// no longer has them, or this gateway deleted them): a session never comes
// back, so a cookie of one needs no store read after the first. It is
// bounded like verified: past maxVerified ids it starts over.
type endedSessions struct {
	mu  sync.RWMutex
	ids map[string]struct{}
}

func newEndedSessions() *endedSessions {
	return &endedSessions{ids: map[string]struct{}{}}
}

func (e *endedSessions) has(id string) bool {
	e.mu.RLock()
	_, ok := e.ids[id]
	e.mu.RUnlock()
	return ok
}

func (e *endedSessions) add(id string) {
	e.mu.Lock()
	if len(e.ids) >= maxVerified {
		clear(e.ids)
	}
	e.ids[id] = struct{}{}
	e.mu.Unlock()
}
