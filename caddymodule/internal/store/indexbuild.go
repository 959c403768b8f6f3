package store

import "time"

// IndexBuild is a store building its user search index over every user at
// Open, a batch at a time, which it logs: its start, its progress every
// 50,000 users and its end, with the time it took.
type IndexBuild struct {
	logf  func(format string, args ...any)
	batch int
	start time.Time
	done  int
}

// NewIndexBuild starts a build of batch users per batch, logged to logf;
// at, when set, is where a build that stopped halfway resumes.
func NewIndexBuild(logf func(format string, args ...any), batch int, at string) *IndexBuild {
	if at != "" {
		logf("building the user search index: resuming after %s", at)
	}
	return &IndexBuild{logf: logf, batch: batch, start: time.Now()}
}

// Indexed notes a batch of n users, and reports whether it was the last
// one (fewer than a whole batch).
func (b *IndexBuild) Indexed(n int) (last bool) {
	if b.done == 0 && n == b.batch {
		b.logf("building the user search index")
	}
	if (b.done+n)/50_000 > b.done/50_000 {
		b.logf("building the user search index: %d users indexed", b.done+n)
	}
	b.done += n
	if n == b.batch {
		return false
	}
	if b.done > 0 {
		b.logf("built the user search index: %d users in %s", b.done, time.Since(b.start).Round(time.Millisecond))
	}
	return true
}
