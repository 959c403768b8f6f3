// Package ops is every operation an operator or a backend performs on the
// gateway's state: users, sessions, linked accounts, provider tokens,
// redirect URLs, webhooks, the store's check, backup, restore and
// migration, key and secret rotation. The backend API, the admin API and
// the CLI all call it, so that each action, with its validation, its events,
// its audit entry, is written once. Caches forget what an operation
// changes on their own: the store is seen through store/cache.
//
// Methods take a context first and report failures as sentinel errors
// (ErrNotFound, ErrInvalid, ErrNeedsReauthorization, …) or the typed errors
// that wrap them (*NotFoundError, *ParamError, *AccountError), which a
// transport maps to its own status codes and error shapes.
package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/tokens"
	"github.com/socialgate/socialgate/caddymodule/internal/webhook"
)

// Provider is what operations need of a configured provider: its name and
// health for Providers, and token revocation for the deletions.
type Provider interface {
	Name() string
	DisplayName() string
	SignIn() bool
	Reachable(ctx context.Context) error
	CanRevoke() bool
	Revoke(ctx context.Context, clientID, accessToken, refreshToken string) error
}

// Options configure a Service. Only Store is required.
type Options struct {
	Store store.Store
	// Tokens hands out fresh provider tokens (ProviderTokens); nil refuses
	// to read them.
	Tokens *tokens.Engine
	// Providers are the configured providers: their tokens are revoked when
	// an account or a user is deleted, and Providers reports them. None:
	// nothing is revoked at the providers.
	Providers []Provider
	// Webhooks reports and replays webhook deliveries; nil has none.
	Webhooks *webhook.Dispatcher
	// Keys are the store's identity-token keys (RotateIdentityKey); nil for
	// a store opened without them.
	Keys *Keys
	// Audit records each provider token handed out; nil records nothing.
	Audit *audit.Log
	// Logger receives a line for each change. Default: none.
	Logger *zap.Logger
}

// Service runs operations on one store. Safe for concurrent use.
type Service struct {
	o         Options
	providers map[string]Provider
}

// New returns a Service.
func New(o Options) *Service {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	s := &Service{o: o, providers: map[string]Provider{}}
	for _, p := range o.Providers {
		s.providers[p.Name()] = p
	}
	return s
}

// HasProvider reports whether a provider of that name is configured.
func (s *Service) HasProvider(name string) bool {
	_, ok := s.providers[name]
	return ok
}

// Sentinel errors; the typed errors below wrap them.
var (
	// ErrNotFound means the record named does not exist.
	ErrNotFound = store.ErrNotFound
	// ErrInvalid means an argument is missing or malformed (*ParamError).
	ErrInvalid = errors.New("invalid argument")
	// ErrNeedsReauthorization means a provider no longer accepts an
	// account's grant: the person must connect it again.
	ErrNeedsReauthorization = tokens.ErrNeedsReauthorization
	// ErrProviderUnavailable means an expired token could not be refreshed
	// now: retry later.
	ErrProviderUnavailable = tokens.ErrUnavailable
	// ErrUnsupported means the store cannot do this (a backup of
	// PostgreSQL, an identity-key rotation where the keys derive from a
	// secret).
	ErrUnsupported = errors.New("not supported by this store")
)

// Kinds of record, as NotFoundError names them.
const (
	KindUser            = "user"
	KindSession         = "session"
	KindExternalAccount = "external account"
	KindRedirectURL     = "redirect URL"
	KindWebhook         = "webhook endpoint"
	KindProvider        = "provider"
)

// NotFoundError is ErrNotFound for one record.
type NotFoundError struct {
	Kind string // KindUser, …
	ID   string
	// UserID is the user an external account was looked for in.
	UserID string
}

func (e *NotFoundError) Error() string {
	switch e.Kind {
	case KindSession:
		// Session ids are secrets (a session token holds one): not repeated.
		return "there is no live session with this id"
	case KindWebhook:
		return "there is no webhook endpoint " + e.ID + " in the running configuration"
	case KindExternalAccount:
		return "there is no external account " + e.ID + " of user " + e.UserID
	}
	return "there is no " + e.Kind + " " + e.ID
}

func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// notFound turns the store's ErrNotFound into a *NotFoundError and leaves
// other errors as they are.
func notFound(err error, nf *NotFoundError) error {
	if errors.Is(err, store.ErrNotFound) {
		return nf
	}
	return err
}

// ParamKind tells what is wrong with a parameter.
type ParamKind int

const (
	// ParamInvalid: a value out of range (a page's limit).
	ParamInvalid ParamKind = iota
	// ParamMissing: a required parameter is absent, or two exclusive ones
	// are both given.
	ParamMissing
	// ParamFormat: a value that is not of its format (a URL, an event id).
	ParamFormat
	// ParamValue: a well-formed value that cannot be used (a future time).
	ParamValue
	// ParamTaken: a value that must be unique and another record holds (a
	// username, an address).
	ParamTaken
	// ParamUnsupported: a parameter, or a value of one, that socialgate
	// does not offer (a password, a filter by phone number).
	ParamUnsupported
)

// ParamError is ErrInvalid for one parameter. Message is a lower-case
// clause that names it.
type ParamError struct {
	Param   string
	Kind    ParamKind
	Message string
}

func (e *ParamError) Error() string { return e.Message }
func (e *ParamError) Unwrap() error { return ErrInvalid }

// RefusedError is the provider's refusal of a refresh that an
// ErrProviderUnavailable carries when the provider refused it (a client id
// or secret it does not take) rather than failed to answer.
type RefusedError = provider.RefusedError

// AccountError is a failure about one linked account: reading its token
// (Err is ErrNeedsReauthorization or ErrProviderUnavailable).
type AccountError struct {
	AccountID, Provider string
	Err                 error
}

func (e *AccountError) Error() string {
	return fmt.Sprintf("account %s at %s: %v", e.AccountID, e.Provider, e.Err)
}

func (e *AccountError) Unwrap() error { return e.Err }

// MaxLimit is the largest page.
const MaxLimit = 500

// Page is a window on a list: Limit items (1 to MaxLimit) after Offset.
type Page struct {
	Limit, Offset int
}

// Check refuses a limit outside 1 to MaxLimit and a negative offset.
func (p Page) Check() error {
	if p.Limit < 1 || p.Limit > MaxLimit || p.Offset < 0 {
		return errPage
	}
	return nil
}

var errPage = &ParamError{Param: "limit", Message: "limit must be a number (limit 1–500, offset ≥ 0)"}

// ParsePage reads a page from the text of its parameters; an empty limit
// is def.
func ParsePage(limit, offset string, def int) (Page, error) {
	p := Page{Limit: def}
	for _, f := range []struct {
		text string
		dst  *int
	}{{limit, &p.Limit}, {offset, &p.Offset}} {
		if f.text == "" {
			continue
		}
		n, err := strconv.Atoi(f.text)
		if err != nil {
			return p, errPage
		}
		*f.dst = n
	}
	return p, p.Check()
}

// window returns the page's part of n items: [from, to).
func (p Page) window(n int) (from, to int) {
	return min(p.Offset, n), min(p.Offset+p.Limit, n)
}

// Actor is who asks for an operation, for its audit entry.
type Actor struct {
	// ID names the caller, never with a secret: "api_key:" and the key's
	// fingerprint, "admin".
	ID string
	// ClientIP is where the request came from.
	ClientIP string
}

type actorKey struct{}

// WithActor returns ctx carrying the actor of the operations run with it.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the actor ctx carries (WithActor), or the zero Actor.
func ActorOf(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}
