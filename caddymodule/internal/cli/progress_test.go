package cli

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// Progress is rewritten in place on a terminal, a line at most every two
// seconds elsewhere (with --progress), and nothing when it is off; the
// counter shows bytes, and a share when the total is known.
func TestProgress(t *testing.T) {
	// 1 KiB a second of 4 KiB, and a read of nothing right after each.
	line := func(n int) string { return fmt.Sprintf("restore: %d.0 KiB of 4.0 KiB (%d%%)", n, n*25) }
	for _, tc := range []struct {
		name    string
		on, tty bool
		want    string
	}{
		{"off", false, true, ""},
		{"terminal", true, true, "\r\033[Krestore: 0 B of 4.0 KiB (0%)" + "\r\033[K" + line(1) + "\r\033[K" + line(2) +
			"\r\033[K" + line(3) + "\r\033[K" + line(4) + "\n"},
		{"log", true, false, "restore: 0 B of 4.0 KiB (0%)\n" + line(2) + "\n" + line(4) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
			p := &progress{w: &out, on: tc.on, tty: tc.tty, now: func() time.Time { return now }}
			c := &counter{p: p, label: "restore", of: 4096}
			for i := range 5 {
				if i > 0 {
					now = now.Add(time.Second)
					c.count(1024)
				} else {
					c.count(0)
				}
				c.count(0)
			}
			p.end()
			if got := out.String(); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		if got := size(n); got != want {
			t.Errorf("size(%d) = %q, want %q", n, got, want)
		}
	}
}
