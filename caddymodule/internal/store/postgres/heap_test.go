package postgres

import (
	"runtime"
	"runtime/metrics"
	"testing"
)

// liveHeap is the heap a collection run now finds live.
func liveHeap() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestOpen_HoldsOneHeapReserve: while a store is open the process holds
// the heap reserve, so that a gateway on PostgreSQL runs the garbage
// collector no more often per request than one on Badger (whose memtables
// are in the heap); without it the collector cost the gateway about 15 µs
// more CPU per request. Two open stores hold one reserve, and the last
// Close gives it back.
func TestOpen_HoldsOneHeapReserve(t *testing.T) {
	dsn := freshDSN(t)
	if n := held(); n != 0 {
		t.Fatalf("before the test, %d stores of this process are open: an earlier test did not close one", n)
	}
	base := liveHeap()
	first := openDSN(t, dsn, Options{})
	one := liveHeap()
	// The live heap is measured, so garbage of earlier tests that the
	// collector finds only now shows as a few KiB less growth: 9/10.
	if grew := one - base; grew < heapReserve*9/10 || held() != 1 || len(reserve.bytes) != heapReserve {
		t.Errorf("opening a store grew the live heap by %d bytes and holds %d bytes, want the reserve, %d", grew, len(reserve.bytes), heapReserve)
	}
	kept := &reserve.bytes[0]
	second := openDSN(t, dsn, Options{})
	if grew := liveHeap() - one; grew > heapReserve/2 || &reserve.bytes[0] != kept {
		t.Errorf("opening a second store grew the live heap by %d bytes, want no second reserve (%d)", grew, heapReserve)
	}
	first.Close()
	if shrank := one - liveHeap(); shrank > heapReserve/2 || len(reserve.bytes) != heapReserve {
		t.Errorf("closing one of two stores shrank the live heap by %d bytes: the other's reserve went with it", shrank)
	}
	second.Close()
	if shrank := one - liveHeap(); shrank < heapReserve*9/10 || reserve.bytes != nil {
		t.Errorf("closing the last store shrank the live heap by %d bytes, want about the reserve, %d", shrank, heapReserve)
	}
}

// held is how many stores of this process hold the reserve.
func held() int {
	reserve.mu.Lock()
	defer reserve.mu.Unlock()
	return reserve.open
}
