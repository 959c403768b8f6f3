package cli

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/pflag"
)

// progressFlag adds --progress: on by default when standard error is a
// terminal.
func progressFlag(fs *pflag.FlagSet, env *Env) {
	fs.Bool("progress", env.Terminal, "Show progress on standard error (default: when it is a terminal)")
}

// progress shows how a long command is going on standard error: rewritten
// in place on a terminal, else a line at most every few seconds.
type progress struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	tty   bool
	now   func() time.Time
	last  time.Time
	shown bool // a line is on the terminal, not ended
}

func (c *call) progress() *progress {
	on, _ := c.flags.GetBool("progress")
	return &progress{w: c.Stderr, on: on, tty: c.Terminal, now: c.Now}
}

// show shows a line of progress, unless one was shown very recently.
func (p *progress) show(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	every := 2 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if !p.on || p.now().Sub(p.last) < every {
		return
	}
	p.last = p.now()
	if p.tty {
		fmt.Fprintf(p.w, "\r\033[K"+format, args...)
		p.shown = true
		return
	}
	fmt.Fprintf(p.w, format+"\n", args...)
}

// end ends the line of progress on a terminal, so that what follows
// starts on its own line.
func (p *progress) end() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprintln(p.w)
		p.shown = false
	}
}

// while shows label with the time elapsed, every second, until stop is
// called: the progress of work that cannot tell how far it is.
func (p *progress) while(label string) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	start := p.now()
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				p.show("%s… %s", label, p.now().Sub(start).Round(time.Second))
			}
		}
	}()
	return func() {
		close(done)
		<-exited
		p.end()
	}
}

// counter counts the bytes through it and shows them as progress.
type counter struct {
	p     *progress
	label string
	n, of int64 // of: the total when known, else 0
	w     io.Writer
	r     io.Reader
}

func (c *counter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.count(n)
	return n, err
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.count(n)
	return n, err
}

func (c *counter) count(n int) {
	c.n += int64(n)
	if c.of > 0 {
		c.p.show("%s: %s of %s (%d%%)", c.label, size(c.n), size(c.of), c.n*100/c.of)
		return
	}
	c.p.show("%s: %s", c.label, size(c.n))
}

// size writes a number of bytes for people.
func size(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
