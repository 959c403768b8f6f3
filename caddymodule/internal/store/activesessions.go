package store

import (
	"hash/fnv"
	"time"
)

// Active sessions (Store.ActiveSessions) are counted, not scanned: every
// Store implementation keeps, in the transaction that creates, moves or
// ends a session, a count of its sessions by the hour they expire in
// (ExpiryHour), split into SessionCountStripes counters so that writers
// running at once seldom meet on one. The count of active sessions is the
// sum of the counters of this hour and the hours after it: a session
// counts until the end of the hour it expires in. Counters of past hours
// are left to the store's upkeep to delete.

// SessionCountStripes is how many counters each hour's count is split
// into.
const SessionCountStripes = 8

// ExpiryHour is the hour a session that expires at t counts in: hours
// since the Unix epoch.
func ExpiryHour(t time.Time) int64 { return t.UnixNano() / int64(time.Hour) }

// SessionStripe is the counter of its hour that the session id counts in.
func SessionStripe(id string) int {
	h := fnv.New32a()
	h.Write([]byte(id))
	return int(h.Sum32() % SessionCountStripes)
}
