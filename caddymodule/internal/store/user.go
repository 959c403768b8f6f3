package store

import (
	"errors"
	"strings"
	"time"
)

// User is a person known to the gateway. Its id looks like user_….
type User struct {
	ID string `json:"id"`
	// Name is the display name: the first linked account's, or first and
	// last name as the backend API set them.
	Name string `json:"name,omitempty"`
	// FirstName and LastName are set by the backend API or taken from the
	// first linked account that has a name (see Names).
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	// Username and ExternalID are unique among users when set (Username in
	// any case: it is kept lower-case); both are set by the backend API.
	Username   string         `json:"username,omitempty"`
	ExternalID string         `json:"external_id,omitempty"`
	ImageURL   string         `json:"image_url,omitempty"`
	Emails     []EmailAddress `json:"emails,omitempty"`
	// PublicMetadata reaches the upstream (identity token, /me);
	// PrivateMetadata never leaves the backend (API and webhooks);
	// UnsafeMetadata is the user's own, readable from /me. Each is at most
	// MaxMetadataSize bytes of JSON.
	PublicMetadata  map[string]any `json:"public_metadata,omitempty"`
	PrivateMetadata map[string]any `json:"private_metadata,omitempty"`
	UnsafeMetadata  map[string]any `json:"unsafe_metadata,omitempty"`
	// Banned users cannot sign in, and have no session: the ban ended them.
	Banned bool `json:"banned,omitempty"`
	// LockedAt is when the user was locked (zero: not locked). A locked
	// user cannot sign in until unlocked; their sessions go on.
	LockedAt     time.Time `json:"locked_at,omitzero"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
	LastSignInAt time.Time `json:"last_sign_in_at"`
}

// Sign-in refusals of a user the backend API banned or locked. SignIn and
// CreateSession refuse such a user (wrapped); nothing is written.
var (
	ErrUserBanned = errors.New("the user is banned")
	ErrUserLocked = errors.New("the user is locked")
)

// Locked reports whether the user is locked.
func (u *User) Locked() bool { return !u.LockedAt.IsZero() }

// CanSignIn refuses a banned or locked user: the rule of SignIn and
// CreateSession in every Store implementation.
func (u *User) CanSignIn() error {
	switch {
	case u.Banned:
		return ErrUserBanned
	case u.Locked():
		return ErrUserLocked
	}
	return nil
}

// Names returns the user's first and last name: the ones recorded, or else
// Name split after its first word ("Ada King Lovelace" is Ada and King
// Lovelace).
func (u *User) Names() (first, last string) {
	if u.FirstName != "" || u.LastName != "" {
		return u.FirstName, u.LastName
	}
	first, last, _ = strings.Cut(strings.TrimSpace(u.Name), " ")
	return first, strings.TrimSpace(last)
}

// PrimaryEmail returns the user's first verified email, or "" when none is
// verified. It is the address that stands for the user (sessions, identity
// headers and token, the API's primary_email_address): an address no
// provider verified, or that another user holds (see Emails), is listed in
// Emails, marked unverified, and never stands for anyone; nor does one
// stored before CleanEmail held that is not a plain address.
func (u *User) PrimaryEmail() string {
	for _, e := range u.Emails {
		if e.Verified && ValidEmail(e.Email) {
			return e.Email
		}
	}
	return ""
}

// EmailAddress is one of a user's addresses. Verified means the user holds
// it (see Emails); VerifiedBy then lists the user's accounts whose provider
// asserted it as verified, and VouchedByAPI when the backend API created the
// user with it, and is empty otherwise.
type EmailAddress struct {
	Email      string   `json:"email"`
	Verified   bool     `json:"verified"`
	VerifiedBy []string `json:"verified_by,omitempty"`
}

// VouchedByAPI stands in EmailAddress.VerifiedBy for the backend API: the
// operator's app created the user with that address, which makes it as
// good for linking by email as a trusted provider's word.
const VouchedByAPI = "backend_api"
