package ratelimit

import (
	"testing"
	"time"
)

func TestAllow_BurstThenRefill(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(map[string]Rule{"start": {Events: 3, Window: time.Minute}}, func() time.Time { return now })
	for i := 0; i < 3; i++ {
		if ok, _ := l.Allow("start", "1.2.3.4"); !ok {
			t.Fatalf("request %d refused within the burst", i+1)
		}
	}
	ok, wait := l.Allow("start", "1.2.3.4")
	if ok || wait < time.Second || wait > 20*time.Second {
		t.Fatalf("4th request: ok=%v wait=%v, want refused with about 20s", ok, wait)
	}
	if ok, _ := l.Allow("start", "5.6.7.8"); !ok {
		t.Error("another client was limited")
	}
	if ok, _ := l.Allow("api", "1.2.3.4"); !ok {
		t.Error("a class without a rule was limited")
	}
	now = now.Add(20 * time.Second)
	if ok, _ := l.Allow("start", "1.2.3.4"); !ok {
		t.Error("no token after a refill period")
	}
}

func TestSweep_ForgetsIdleClients(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(map[string]Rule{"a": {Events: 1, Window: time.Minute}}, func() time.Time { return now })
	for i := 0; i < 100; i++ {
		l.Allow("a", string(rune('a'+i%26))+string(rune(i)))
	}
	now = now.Add(2 * time.Minute)
	l.Allow("a", "new")
	if n := len(l.buckets); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1", n)
	}
}
