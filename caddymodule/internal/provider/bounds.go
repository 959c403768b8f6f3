package provider

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Bounds of what the gateway keeps of a provider's answers, in bytes. A
// display field past its bound is cut or dropped; an identity field or a
// token past its bound refuses the answer (*TooLargeError): cut short, an
// identity could name someone else, and a token would not work.
const (
	// MaxSubject bounds the person's id at the provider: OpenID Connect's
	// bound of sub.
	MaxSubject = 255
	// MaxEmail bounds an email address: RFC 5321's bound of an address in
	// a path.
	MaxEmail = 254
	// MaxIssuer bounds the issuer an identity belongs to.
	MaxIssuer = 1024
	// MaxName bounds a person's name, and MaxUsername a username: a longer
	// one is cut at a character boundary.
	MaxName     = 512
	MaxUsername = 256
	// MaxImageURL bounds a picture's URL: a longer one is dropped, since cut
	// short it would point nowhere.
	MaxImageURL = 2048
	// MaxToken bounds each field of a token answer that the gateway keeps
	// (access_token, refresh_token, id_token, token_type, scope), and an
	// ID token a native app sends.
	MaxToken = 32 << 10
)

// TooLargeError refuses an answer with an identity field or a token past
// its bound. It wraps ErrRejected.
type TooLargeError struct {
	// Field names what is too long: "subject", "email address", "issuer",
	// or the token answer's member ("access_token"…).
	Field       string
	Length, Max int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%v: the %s is %d bytes long; at most %d are kept", ErrRejected, e.Field, e.Length, e.Max)
}

func (e *TooLargeError) Unwrap() error { return ErrRejected }

// checkSize refuses s when it is longer than max.
func checkSize(field, s string, max int) error {
	if len(s) > max {
		return &TooLargeError{Field: field, Length: len(s), Max: max}
	}
	return nil
}

// listBound bounds a list the provider sends: at most items entries of at
// most each bytes, size bytes in all; empty entries and entries past the
// bounds are left out, the first ones kept.
type listBound struct{ items, each, size int }

var (
	groupsBound = listBound{items: 256, each: 256, size: 16 << 10}
	scopesBound = listBound{items: 256, each: 256, size: 8 << 10}
)

// add adds s to list within the bounds.
func (b listBound) add(list []string, s string) []string {
	if s == "" || len(s) > b.each || len(list) >= b.items {
		return list
	}
	size := len(s)
	for _, e := range list {
		size += len(e)
	}
	if size > b.size {
		return list
	}
	return append(list, s)
}

// checkTokenAnswer refuses a token answer with a field the gateway keeps
// that is longer than MaxToken. scopeKey is where the provider puts the
// granted scopes.
func checkTokenAnswer(raw map[string]any, scopeKey string) error {
	for _, key := range []string{"access_token", "refresh_token", "id_token", "token_type", scopeKey} {
		s, _ := raw[key].(string)
		if err := checkSize(key, s, MaxToken); err != nil {
			return err
		}
	}
	return nil
}

// finish bounds a result before anyone keeps it: an identity field or an
// ID token past its bound refuses it, so does a subject or an email with
// a NUL byte (which no store can keep), and display fields are cut to
// their bounds.
func finish(res *Result) (*Result, error) {
	prof := &res.Profile
	if strings.ContainsRune(prof.Subject, 0) || strings.ContainsRune(prof.Email, 0) {
		return nil, fmt.Errorf("%w: the subject or the email holds a NUL byte", ErrRejected)
	}
	for _, err := range []error{
		checkSize("subject", prof.Subject, MaxSubject),
		checkSize("email address", prof.Email, MaxEmail),
		checkSize("issuer", res.Issuer, MaxIssuer),
		checkSize("id_token", res.IDToken, MaxToken),
	} {
		if err != nil {
			return nil, err
		}
	}
	prof.Name = cut(prof.Name, MaxName)
	prof.Username = cut(prof.Username, MaxUsername)
	if len(prof.ImageURL) > MaxImageURL {
		prof.ImageURL = ""
	}
	return res, nil
}

// cut shortens s to at most n bytes, at a character boundary.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
