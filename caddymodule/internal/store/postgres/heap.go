package postgres

import "sync"

// heapReserve is the heap the process holds while a store is open, for the
// garbage collector's sake: as much as the Badger store's two memtables of
// 8 MiB.
const heapReserve = 16 << 20

// reserve is heapReserve bytes that nothing reads or writes, held while
// any store of this process is open (one for all of them, since the
// collector paces the whole process).
//
// The garbage collector runs each time the heap has grown by what it held
// after the last run (GOGC 100), so a process with a small heap runs it
// more often for the same work. The Badger store holds its memtables in
// the heap; this store holds its data in the database, so without the
// reserve a gateway on it ran the collector twice as often per request and
// spent about 15 µs more CPU on each (perf/README.md). The reserve holds no
// pointers, so the collector never scans it; it takes at most its size in
// memory (none when the runtime hands it pages fresh from the operating
// system, which it need not clear), as Badger's memtables take theirs.
var reserve struct {
	mu    sync.Mutex
	open  int // stores
	bytes []byte
}

// holdReserve is called by each store that opens.
func holdReserve() {
	reserve.mu.Lock()
	defer reserve.mu.Unlock()
	if reserve.open == 0 {
		reserve.bytes = make([]byte, heapReserve)
	}
	reserve.open++
}

// releaseReserve is called by each store that closes; the last lets the
// reserve go.
func releaseReserve() {
	reserve.mu.Lock()
	defer reserve.mu.Unlock()
	if reserve.open--; reserve.open == 0 {
		reserve.bytes = nil
	}
}
