package store

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The user search (Store.SearchUsers) is a prefix search over an index of
// terms, which every Store implementation keeps in the same transaction as
// the records they come from: a user's terms (UserTerms) with the user, an
// account's (AccountTerms) with the account. A user matches when one of its
// terms, or one of its accounts', starts with the search's prefix
// (SearchKey of the text searched for). Both stores list the matches as
// Matches decides, newest first.

// Bounds of the search.
const (
	// MaxSearchTerm bounds a term, and a prefix searched for, in bytes:
	// longer text is cut (at a character's boundary) to its first
	// MaxSearchTerm bytes.
	MaxSearchTerm = 200
	// SearchCount is how many matching users a search counts exactly. When
	// more users match, UserMatches.More is set and Total is SearchCount:
	// the page is then found by walking the users newest first and keeping
	// those that match, which is fast because so many do.
	SearchCount = 10_000
	// SearchEntries bounds the index entries a search reads before it
	// walks the users instead (a user may have several matching terms).
	SearchEntries = 4 * SearchCount
)

// UserSearch asks Store.SearchUsers for a page of the users a prefix finds.
type UserSearch struct {
	// Prefix is the text searched for, as the operator typed it (SearchKey
	// normalizes it). An empty one finds no one.
	Prefix        string
	Limit, Offset int // see UserQuery.Page
}

// UserMatches is the outcome of Store.SearchUsers.
type UserMatches struct {
	// Users is the page, newest first (then by id).
	Users []*User
	// Total is the number of matching users, or SearchCount when More.
	Total int
	// More means more than SearchCount users match.
	More bool
}

// SearchKey is text as the search index holds it and a search looks it
// up: in Unicode normal form NFKC, lower-cased, without control characters
// (or U+10FFFF, the top of the index's range), its spaces trimmed and each
// run of them made one, and at most MaxSearchTerm bytes.
func SearchKey(s string) string {
	s = strings.ToLower(norm.NFKC.String(s))
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.MaxRune {
			return -1
		}
		return r
	}, s)
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > MaxSearchTerm {
		s = s[:MaxSearchTerm]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
	}
	return s
}

// SearchEnd is the end of the index range that prefix starts: every term
// that starts with prefix sorts (bytewise) at or after prefix and before
// SearchEnd(prefix), and no other does (SearchKey drops U+10FFFF).
func SearchEnd(prefix string) string { return prefix + string(unicode.MaxRune) }

// UserTerms returns the terms a user is found by, each once: its id,
// username and external id, each of its addresses, and its name, first
// name and last name, each whole and each of their words (so "love" finds
// Ada Lovelace, and "ada lo" too).
func UserTerms(u *User) []string {
	terms := []string{u.ID, u.Username, u.ExternalID}
	for _, e := range u.Emails {
		terms = append(terms, NormalizeEmail(e.Email))
	}
	for _, name := range []string{u.Name, u.FirstName, u.LastName} {
		terms = append(terms, name)
		terms = append(terms, strings.Fields(name)...)
	}
	return searchKeys(terms)
}

// AccountTerms returns the terms a linked account makes its user found by:
// the subject, the user's id at the provider (the provider's external id).
func AccountTerms(a *ExternalAccount) []string { return searchKeys([]string{a.Subject}) }

// searchKeys returns the SearchKey of each text, sorted, without
// duplicates and empty ones.
func searchKeys(texts []string) []string {
	keys := make([]string, 0, len(texts))
	for _, t := range texts {
		if k := SearchKey(t); k != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// TermsMatch reports whether one of terms starts with prefix (a SearchKey).
func TermsMatch(terms []string, prefix string) bool {
	return slices.ContainsFunc(terms, func(t string) bool { return strings.HasPrefix(t, prefix) })
}

// Match is one entry of a store's search index that a search found: the
// user it names, with the user's CreatedAt in unix nanoseconds.
type Match struct {
	UserID  string
	Created int64
}

// Matches is the search of every Store implementation over its index.
// scan calls yield with each index entry whose term starts with the prefix
// (a user may come several times), until there are no more or yield
// returns false, and returns its error. Matches counts the users, and
// returns the ids of q's page of them, newest first (then by id), with
// their number. When more than SearchCount users match, or the index has
// more than SearchEntries entries under the prefix, it stops early and
// reports more: the caller then walks its users newest first, keeping
// those that match (TermsMatch), which finds a page fast because so many
// match, and reports Total SearchCount.
func Matches(q UserSearch, scan func(yield func(Match) bool) error) (page []string, total int, more bool, err error) {
	seen := map[string]int64{}
	entries := 0
	err = scan(func(m Match) bool {
		seen[m.UserID] = m.Created
		entries++
		return len(seen) <= SearchCount && entries <= SearchEntries
	})
	if err != nil || len(seen) > SearchCount || entries > SearchEntries {
		return nil, 0, err == nil, err
	}
	all := make([]Match, 0, len(seen))
	for id, created := range seen {
		all = append(all, Match{UserID: id, Created: created})
	}
	slices.SortFunc(all, func(x, y Match) int {
		if x.Created != y.Created {
			if x.Created > y.Created {
				return -1
			}
			return 1
		}
		return strings.Compare(x.UserID, y.UserID)
	})
	limit, offset := UserQuery{Limit: q.Limit, Offset: q.Offset}.Page()
	for _, m := range all[min(offset, len(all)):min(offset+limit, len(all))] {
		page = append(page, m.UserID)
	}
	return page, len(all), false, nil
}
