package badger

import (
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Checks of what the console counts and searches by.

// checkSearch checks the search index against the users and accounts,
// both ways (a missing user or account is reported elsewhere, once): each
// user's idx/user_terms entry holds its terms and its accounts'
// (termSources), and idx/term holds exactly one key for each of them.
func (c *checker) checkSearch() {
	want := map[string]bool{}
	for _, id := range c.userIDs {
		u := c.users[id]
		rest := createdOrder(u.CreatedAt) + "/" + id
		expect := termSources{"": store.UserTerms(u)}
		for _, a := range c.accounts {
			if a.UserID == id {
				expect[a.ID] = store.AccountTerms(a)
			}
		}
		for src, terms := range c.terms[rest] {
			if src != "" && c.accountBy[src] == nil {
				expect[src] = terms // an account missing or undecodable, reported as such
			}
		}
		expect = maps.Collect(func(yield func(string, []string) bool) {
			for k, v := range expect {
				if len(v) > 0 && !yield(k, v) {
					return
				}
			}
		})
		switch got, ok := c.terms[rest]; {
		case !ok:
			c.reportf("user %s: no user_terms entry", id)
		case !maps.EqualFunc(got, expect, slices.Equal):
			c.reportf("user %s: its search terms are %q, want %q", id, got, expect)
		}
		for _, t := range expect.all() {
			want[t+"\x00"+rest] = true
		}
	}
	for _, key := range c.termKeys {
		term, rest, _ := strings.Cut(key, "\x00")
		if _, uid, _ := strings.Cut(rest, "/"); !want[key] && c.users[uid] != nil { // a missing user is reported as such
			c.reportf("search index entry %q of %s: the user has no such term", term, rest)
		}
		delete(want, key)
	}
	for _, key := range slices.Sorted(maps.Keys(want)) {
		term, rest, _ := strings.Cut(key, "\x00")
		c.reportf("user %s: no search index entry for %q", rest, term)
	}
	for rest := range c.terms {
		if _, uid, _ := strings.Cut(rest, "/"); c.users[uid] == nil && !c.createdSet[rest] {
			c.reportf("user_terms entry %s: the user is missing", rest)
		}
	}
}

// checkSessionCounts checks the session counters of the hours after this
// one against the sessions (this hour's sessions may expire while the check
// reads them).
func (c *checker) checkSessionCounts() {
	next := store.ExpiryHour(time.Now()) + 1
	want := map[int64]int64{}
	for _, s := range c.sessions {
		if h := store.ExpiryHour(s.ExpiresAt); h >= next {
			want[h]++
		}
	}
	for h, n := range c.sessionCounts {
		if h >= next && want[h] != n {
			c.reportf("session count of hour %d is %d; %d sessions expire then", h, n, want[h])
		}
	}
	for h, n := range want {
		if _, ok := c.sessionCounts[h]; !ok {
			c.reportf("session count of hour %d is missing; %d sessions expire then", h, n)
		}
	}
}
