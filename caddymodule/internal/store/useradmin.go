package store

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
)

// MaxMetadataSize bounds each of a user's metadata objects, as JSON: 8 KB,
// as Clerk's.
const MaxMetadataSize = 8 << 10

// Bounds of the other fields the backend API sets.
const (
	minUsername    = 4
	maxUsername    = 64
	maxExternalID  = 255
	maxNamePart    = 256
	maxCreateEmail = 10
)

// ErrInvalidUser means a user's fields, as a create or an update left them,
// break a rule; *FieldError names the field. Nothing changed.
var ErrInvalidUser = errors.New("invalid user")

// FieldError is ErrInvalidUser, or ErrExists for a value another user
// holds, about one field (its JSON name: username, email_address…).
type FieldError struct {
	Field   string
	Message string
	Err     error // ErrInvalidUser or ErrExists
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }
func (e *FieldError) Unwrap() error { return e.Err }

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...), Err: ErrInvalidUser}
}

// Taken is the error of a unique value that another user holds.
func Taken(field string) error {
	return &FieldError{Field: field, Message: "another user has this " + strings.ReplaceAll(field, "_", " "), Err: ErrExists}
}

// Handle kinds: the values unique among users, each in its own index.
const (
	HandleUsername   = "username"
	HandleExternalID = "external_id"
)

// Handles returns the user's unique values by kind (HandleUsername…),
// without the empty ones.
func (u *User) Handles() map[string]string {
	h := map[string]string{}
	if u.Username != "" {
		h[HandleUsername] = u.Username
	}
	if u.ExternalID != "" {
		h[HandleExternalID] = u.ExternalID
	}
	return h
}

// NewUser checks and completes a user that the backend API creates: a new
// id, its times, every address verified by VouchedByAPI (each store claims
// them for it, failing with Taken("email_address") when another user holds
// one), the username lower-cased. Every Store implementation's CreateUser
// starts with it.
func NewUser(u *User, now time.Time) error {
	u.ID = NewID("user")
	u.CreatedAt, u.UpdatedAt, u.LastSignInAt = now, now, time.Time{}
	if len(u.Emails) > maxCreateEmail {
		return invalid("email_address", "at most %d addresses", maxCreateEmail)
	}
	seen := map[string]bool{}
	for i := range u.Emails {
		e, ok := CleanEmail(u.Emails[i].Email)
		if !ok || strings.ContainsRune(e, '/') { // as the API always refused
			return invalid("email_address", "%q is not an email address", strings.TrimSpace(u.Emails[i].Email))
		}
		if seen[NormalizeEmail(e)] {
			return invalid("email_address", "%q is listed twice", e)
		}
		seen[NormalizeEmail(e)] = true
		u.Emails[i] = EmailAddress{Email: e, Verified: true, VerifiedBy: []string{VouchedByAPI}}
	}
	return checkUser(u)
}

// UpdateUser applies fn to a copy of old under the rules of every Store
// implementation's UpdateUser: fn may change the names, username,
// external id, picture, metadata, ban and lock; the id, addresses and times
// stay as they were. It returns the updated user and whether it changed
// (its UpdatedAt is then now).
func UpdateUser(old *User, fn func(u *User) error, now time.Time) (*User, bool, error) {
	u := *old
	u.Emails = slices.Clone(old.Emails)
	u.PublicMetadata, u.PrivateMetadata, u.UnsafeMetadata = maps.Clone(old.PublicMetadata), maps.Clone(old.PrivateMetadata), maps.Clone(old.UnsafeMetadata)
	if err := fn(&u); err != nil {
		return nil, false, err
	}
	u.ID, u.Emails, u.CreatedAt, u.UpdatedAt, u.LastSignInAt = old.ID, old.Emails, old.CreatedAt, old.UpdatedAt, old.LastSignInAt
	if err := checkUser(&u); err != nil {
		return nil, false, err
	}
	a, _ := json.Marshal(old)
	b, _ := json.Marshal(&u)
	if string(a) == string(b) {
		return old, false, nil
	}
	u.UpdatedAt = now
	return &u, true, nil
}

// checkUser checks the fields the backend API sets, lower-casing the
// username and dropping empty metadata.
func checkUser(u *User) error {
	u.Username = strings.ToLower(u.Username)
	switch n := len(u.Username); {
	case n > 0 && (n < minUsername || n > maxUsername):
		return invalid("username", "a username has %d to %d characters", minUsername, maxUsername)
	case strings.ContainsFunc(u.Username, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') }):
		return invalid("username", "a username has only letters, digits, _ and -")
	case len(u.ExternalID) > maxExternalID || strings.ContainsFunc(u.ExternalID, unicode.IsControl):
		return invalid("external_id", "an external id has at most %d characters, none a control character", maxExternalID)
	}
	for field, v := range map[string]string{"first_name": u.FirstName, "last_name": u.LastName, "name": u.Name, "image_url": u.ImageURL} {
		if len(v) > maxNamePart || strings.ContainsFunc(v, unicode.IsControl) {
			return invalid(field, "at most %d characters, none a control character", maxNamePart)
		}
	}
	for field, m := range map[string]*map[string]any{"public_metadata": &u.PublicMetadata, "private_metadata": &u.PrivateMetadata, "unsafe_metadata": &u.UnsafeMetadata} {
		if len(*m) == 0 {
			*m = nil
			continue
		}
		raw, err := json.Marshal(*m)
		if err != nil {
			return invalid(field, "not JSON: %v", err)
		}
		if len(raw) > MaxMetadataSize {
			return invalid(field, "%d bytes of JSON; at most %d", len(raw), MaxMetadataSize)
		}
	}
	return nil
}

// MergeMetadata deep-merges patch into m, as Clerk's metadata update does:
// an object merges into an object key by key, a null removes the key, any
// other value replaces it. It returns the result; m is not modified.
func MergeMetadata(m, patch map[string]any) map[string]any {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range patch {
		switch v := v.(type) {
		case nil:
			delete(out, k)
		case map[string]any:
			old, _ := out[k].(map[string]any)
			out[k] = MergeMetadata(old, v)
		default:
			out[k] = v
		}
	}
	return out
}

// UserFilter narrows Store.Users beyond UserQuery.Email: a user matches
// when each list that is set holds one of its values, and Query is part of
// its id, an address, username, external id or name (any case), and
// Prefix the start of one of them (any case).
type UserFilter struct {
	IDs, Emails, ExternalIDs, Usernames []string
	Query, Prefix                       string
	Banned                              *bool
}

// Match reports whether u passes the filter.
func (f *UserFilter) Match(u *User) bool {
	if f == nil {
		return true
	}
	anyOf := func(list []string, has func(v string) bool) bool {
		return len(list) == 0 || slices.ContainsFunc(list, has)
	}
	hasEmail := func(v string) bool {
		return slices.ContainsFunc(u.Emails, func(e EmailAddress) bool { return NormalizeEmail(e.Email) == LookupEmail(v) })
	}
	first, last := u.Names()
	q, prefix := strings.ToLower(f.Query), strings.ToLower(f.Prefix)
	contains := func(v string) bool { return strings.Contains(strings.ToLower(v), q) }
	starts := func(v string) bool { return strings.HasPrefix(strings.ToLower(v), prefix) }
	fields := []string{u.ID, u.Username, u.ExternalID, u.Name, first, last}
	return anyOf(f.IDs, func(v string) bool { return v == u.ID }) &&
		anyOf(f.Emails, hasEmail) &&
		anyOf(f.ExternalIDs, func(v string) bool { return v == u.ExternalID }) &&
		anyOf(f.Usernames, func(v string) bool { return strings.ToLower(v) == u.Username }) &&
		(f.Banned == nil || *f.Banned == u.Banned) &&
		(q == "" || slices.ContainsFunc(fields, contains) ||
			slices.ContainsFunc(u.Emails, func(e EmailAddress) bool { return contains(e.Email) })) &&
		(prefix == "" || slices.ContainsFunc(fields, starts) ||
			slices.ContainsFunc(u.Emails, func(e EmailAddress) bool { return starts(e.Email) }))
}

// userOrders are the fields UserQuery.OrderBy may name, each with its
// ascending order.
var userOrders = map[string]func(x, y *User) int{
	"created_at":      func(x, y *User) int { return x.CreatedAt.Compare(y.CreatedAt) },
	"updated_at":      func(x, y *User) int { return x.UpdatedAt.Compare(y.UpdatedAt) },
	"last_sign_in_at": func(x, y *User) int { return x.LastSignInAt.Compare(y.LastSignInAt) },
	"last_active_at":  func(x, y *User) int { return x.LastSignInAt.Compare(y.LastSignInAt) },
	"email_address": func(x, y *User) int {
		return strings.Compare(NormalizeEmail(x.PrimaryEmail()), NormalizeEmail(y.PrimaryEmail()))
	},
	"username":   func(x, y *User) int { return strings.Compare(x.Username, y.Username) },
	"first_name": func(x, y *User) int { return compareName(x, y, true) },
	"last_name":  func(x, y *User) int { return compareName(x, y, false) },
}

func compareName(x, y *User, first bool) int {
	xf, xl := x.Names()
	yf, yl := y.Names()
	if first {
		return strings.Compare(strings.ToLower(xf), strings.ToLower(yf))
	}
	return strings.Compare(strings.ToLower(xl), strings.ToLower(yl))
}

// ValidUserOrder reports whether order can be a UserQuery.OrderBy: a field
// of userOrders after an optional "+" (ascending, the default) or "-".
func ValidUserOrder(order string) bool {
	_, ok := userOrders[strings.TrimPrefix(strings.TrimPrefix(order, "+"), "-")]
	return order == "" || ok
}

// SelectUsers is Store.Users over a list of candidates (every user, or
// those holding q.Email): it filters them, orders them as q.OrderBy says
// (then by id) and returns q's page and the number of matches. A Store
// implementation uses it when q has a Filter or an OrderBy, which no
// index serves.
func SelectUsers(candidates []*User, q UserQuery) ([]*User, int) {
	matches := slices.DeleteFunc(candidates, func(u *User) bool { return !q.Filter.Match(u) })
	order := cmp.Or(q.OrderBy, "-created_at")
	desc := strings.HasPrefix(order, "-")
	compare := userOrders[strings.TrimPrefix(strings.TrimPrefix(order, "+"), "-")]
	if compare == nil {
		compare, desc = userOrders["created_at"], true
	}
	slices.SortFunc(matches, func(x, y *User) int {
		c := compare(x, y)
		if desc {
			c = -c
		}
		return cmp.Or(c, strings.Compare(x.ID, y.ID))
	})
	limit, offset := q.Page()
	return matches[min(offset, len(matches)):min(offset+limit, len(matches))], len(matches)
}
