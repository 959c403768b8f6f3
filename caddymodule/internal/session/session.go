// Package session turns a browser's cookie into a server-side session and
// back. The cookie holds only the session id, signed and encrypted with
// gorilla/securecookie; the session record lives in the store, so signing
// out (deleting the record) kills every copy of the cookie.
package session

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gorilla/securecookie"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/metrics"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// CookieName is the session cookie's name over plain HTTP. Over HTTPS the
// cookie is HostCookieName, and only that name is read there: browsers
// accept a __Host- cookie only from the host itself (Secure, Path=/, no
// Domain), so a sibling subdomain or a plain-HTTP answer cannot plant one
// (cookie tossing).
const (
	CookieName     = "socialgate_session"
	HostCookieName = HostPrefix + CookieName
)

// maxSessionCookies bounds the session cookies one request is resolved
// for (each may cost a store read): the verified ones whose session is not
// known to have ended (see endedSessions).
const maxSessionCookies = 4

// maxSignOutCookies bounds the session cookies a sign-out (and a sign-in,
// which ends the sessions the request carries) reads: not maxSessionCookies,
// or a sibling host tossing that many sessions of its own for the sign-out
// path (sent before the person's) would hide the person's session from the
// sign-out. Each costs a decode and a store read or delete; the request's
// header size bounds them anyway, this well below it. A request naming more
// is told that some sessions could not be read (Presented, EndVouched).
const maxSignOutCookies = 64

// ErrNoSession means the request carries no valid, live session. Tampered,
// truncated, oversized and wrong-key cookies all end here.
var ErrNoSession = errors.New("no session")

// Manager creates, finds and ends sessions.
type Manager struct {
	store    store.Store
	codecs   []securecookie.Codec
	csrfKeys [][]byte
	lifetime time.Duration
	now      func() time.Time
	verified *verified // nil unless RememberVerified
	ended    *endedSessions
	domain   string    // the session cookie's Domain; "" for host-only (see WithDomain)
	activity *activity // nil without an idle timeout
}

// NewManager returns a Manager. secrets are the cookie secrets, newest first:
// the first encodes, all decode (rotation). lifetime is how long a session
// lives after sign-in.
func NewManager(st store.Store, secrets [][]byte, lifetime time.Duration) (*Manager, error) {
	if len(secrets) == 0 {
		return nil, errors.New("at least one cookie secret is required")
	}
	m := &Manager{store: st, lifetime: lifetime, now: time.Now, ended: newEndedSessions()}
	for i, s := range secrets {
		if len(s) < 32 {
			return nil, fmt.Errorf("cookie secret %d is shorter than 32 bytes", i+1)
		}
		sc := securecookie.New(keyring.Derive(s, "cookie hash", 32), keyring.Derive(s, "cookie block", 32))
		sc.SetSerializer(securecookie.NopEncoder{})
		sc.MaxAge(int(lifetime / time.Second))
		sc.MaxLength(4096)
		m.codecs = append(m.codecs, sc)
		m.csrfKeys = append(m.csrfKeys, keyring.Derive(s, "csrf", 32))
	}
	return m, nil
}

// Lookup returns the live session of the request's cookie, or of its
// session token (Authorization: Bearer, for native apps). bearer reports
// that the token carried it. Cookie values that do not verify are ignored,
// so a planted garbage cookie locks no one out, and so are those of
// sessions known to have ended; verified cookies of two live sessions are
// ambiguous (one was planted) and are no session at all (Ambiguous). A
// request is
// resolved for at most maxSessionCookies others: one that carries more is
// no session either (one of those left may be a planted live one), and the
// ended sessions found on the way are skipped the next time, so planted
// cookies of ended sessions, however many, lock no one out for more than
// a few requests, and each costs one store read per gateway.
func (m *Manager) Lookup(r *http.Request) (s *store.Session, bearer bool, err error) {
	var buf [maxSessionCookies + 1]string
	ids := m.cookieSessionIDs(r, buf[:0], maxSessionCookies+1, true)
	more := len(ids) > maxSessionCookies
	if more {
		ids = ids[:maxSessionCookies]
	}
	if len(ids) == 0 {
		id, ok := m.bearerSessionID(r)
		if !ok {
			return nil, false, ErrNoSession
		}
		ids, bearer = append(ids, id), true
	}
	for _, id := range ids {
		live, err := m.session(r.Context(), id)
		if errors.Is(err, ErrNoSession) {
			m.ended.add(id)
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if s != nil {
			return nil, false, &Ambiguous{IDs: [2]string{s.ID, live.ID}}
		}
		s = live
	}
	if s == nil || more {
		return nil, false, ErrNoSession
	}
	m.activity.note(m, s)
	return s, bearer, nil
}

// session returns a live session by id.
func (m *Manager) session(ctx context.Context, id string) (*store.Session, error) {
	s, err := m.store.Session(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrNoSession
	}
	return s, err
}

// RememberVerified makes the manager remember every cookie value and
// session token it has verified (see decode). Call it before the manager
// serves requests.
func (m *Manager) RememberVerified() *Manager {
	m.verified = &verified{ids: map[string]string{}}
	return m
}

// bearerSessionID decodes a session token from the Authorization header.
func (m *Manager) bearerSessionID(r *http.Request) (string, bool) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", false
	}
	return m.decode(token)
}

// IsToken reports whether value is a session token or cookie value that
// these keys signed within the session lifetime, its session live or not:
// such a value is the gateway's credential and never goes upstream.
func (m *Manager) IsToken(value string) bool {
	_, ok := m.decode(value)
	return ok
}

// Issue creates a session for a native app, signed in now through the
// linked account accountID ("" when unknown), and returns its session
// token, which works as Authorization: Bearer on every protected route. It
// is the same kind of session as a cookie's: listed, revocable, expiring,
// ended when its account is disconnected. A positive lifetime shorter than
// the manager's ends it sooner (a sign-in that left the gateway no grant to
// check the person with).
func (m *Manager) Issue(ctx context.Context, r *http.Request, user *store.User, accountID string, lifetime time.Duration) (*store.Session, string, error) {
	if lifetime <= 0 || lifetime > m.lifetime {
		lifetime = m.lifetime
	}
	s, err := m.newSession(ctx, r, user, Auth{AccountID: accountID, Time: m.now()}, lifetime)
	if err != nil {
		return nil, "", err
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return nil, "", fmt.Errorf("creating session: %w", err)
	}
	metrics.Sessions.WithLabelValues("created").Inc()
	token, err := securecookie.EncodeMulti(CookieName, []byte(s.ID), m.codecs...)
	if err != nil {
		return nil, "", fmt.Errorf("encoding session token: %w", err)
	}
	return s, token, nil
}

// Auth is how the person of a new session proved who they are: through
// which linked account (AccountID, "" when unknown) and when (Time, never
// later than now; zero when unknown, which sensitive actions take as long
// ago).
type Auth struct {
	AccountID string
	Time      time.Time
	// ProviderSID is the provider's session of that proof (the ID token's
	// sid), which a back-channel logout names; "" when unknown.
	ProviderSID string
}

// newSession makes the record of a session that ends lifetime from now at
// the latest.
func (m *Manager) newSession(ctx context.Context, r *http.Request, user *store.User, auth Auth, lifetime time.Duration) (*store.Session, error) {
	accounts, err := m.store.ExternalAccounts(ctx, user.ID)
	if err != nil {
		return nil, fmt.Errorf("reading the user's groups: %w", err)
	}
	now := m.now()
	if auth.Time.After(now) {
		auth.Time = now
	}
	s := &store.Session{
		ID:     store.NewID("sess"),
		UserID: user.ID,
		Email:  headerSafe(user.PrimaryEmail()),
		Name:   headerSafe(user.Name),
		Groups: groupsOf(accounts),
		// The identity token carries it; the store keeps it current.
		PublicMetadata: maps.Clone(user.PublicMetadata),
		CreatedAt:      now,
		AbandonAt:      now.Add(lifetime),
		LastActiveAt:   now,
		AccountID:      auth.AccountID,
		AuthTime:       auth.Time,
		ProviderSID:    auth.ProviderSID,
		UserAgent:      truncate(r.UserAgent(), 256),
		IP:             clientIP(r),
	}
	s.EmailVerified = s.Email != "" // PrimaryEmail is a verified address, or none
	s.ExpiresAt = m.expiry(s, now)
	return s, nil
}

// maxGroupsHeader bounds the groups a session carries, as the
// comma-separated X-Auth-User-Groups header: upstream servers refuse
// requests whose headers pass a few KiB (8 KiB at nginx by default).
const maxGroupsHeader = 4 << 10

// groupsOf lists the groups of a user's accounts as provider:group, once
// each, for the X-Auth-User-Groups header (comma-separated) and the
// identity token: names with a comma or a control character are left out,
// and so is every group past maxGroupsHeader bytes of header.
func groupsOf(accounts []*store.ExternalAccount) []string {
	var out []string
	size := 0
	for _, a := range accounts {
		for _, g := range a.Groups {
			q := a.Provider + ":" + g
			if strings.ContainsRune(g, ',') || headerSafe(q) != q || slices.Contains(out, q) {
				continue
			}
			if size+len(q)+1 > maxGroupsHeader {
				return out
			}
			size += len(q) + 1
			out = append(out, q)
		}
	}
	return out
}

// cookieSessionIDs appends to ids the distinct session ids of the request's
// session cookies that verify, at most limit of them; with skipEnded, not
// those of sessions known to have ended. Only the name of the request's
// scheme counts (see CookieName and WithDomain).
func (m *Manager) cookieSessionIDs(r *http.Request, ids []string, limit int, skipEnded bool) []string {
	sc := scanner{headers: r.Header["Cookie"], name: m.cookieName(r)}
	for v, ok := sc.next(); ok && len(ids) < limit; v, ok = sc.next() {
		if id, ok := m.decode(v); ok && !slices.Contains(ids, id) && !(skipEnded && m.ended.has(id)) {
			ids = append(ids, id)
		}
	}
	return ids
}

// decode verifies a cookie value or session token and returns its session
// id. A value verified once is remembered (RememberVerified): the HMAC and
// decryption then cost nothing on later requests.
func (m *Manager) decode(value string) (string, bool) {
	if id, ok := m.verified.get(value); ok {
		return id, true
	}
	var id []byte
	if err := securecookie.DecodeMulti(CookieName, value, &id, m.codecs...); err != nil {
		return "", false
	}
	m.verified.remember(value, string(id))
	return string(id), true
}

// Start creates a new session for the user, through auth, and sets its
// cookie. Every session the request's cookies carried, and previous when
// given (the session that started a link), are ended: every sign-in and
// every link gets a new id. A session that replaces previous (a connect,
// reauthorize or re-authentication) ends when previous would have: a link
// renews no lifetime, and a session that began shorter (a native ID-token
// sign-in's) stays so.
func (m *Manager) Start(ctx context.Context, w http.ResponseWriter, r *http.Request, user *store.User, previous *store.Session, auth Auth) (*store.Session, error) {
	old := m.cookieSessionIDs(r, nil, maxSignOutCookies, true)
	if previous != nil {
		old = append(old, previous.ID)
	}
	for _, id := range old {
		if err := m.store.DeleteSession(ctx, id); err != nil {
			return nil, fmt.Errorf("ending the previous session: %w", err)
		}
		m.ended.add(id)
	}
	lifetime := m.lifetime
	if previous != nil {
		end := cmp.Or(previous.AbandonAt, previous.ExpiresAt) // sessions before AbandonAt: ExpiresAt was absolute
		lifetime = min(lifetime, end.Sub(m.now()))
	}
	s, err := m.newSession(ctx, r, user, auth, lifetime)
	if err != nil {
		return nil, err
	}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return nil, fmt.Errorf("creating session: %w", err)
	}
	metrics.Sessions.WithLabelValues("created").Inc()
	value, err := securecookie.EncodeMulti(CookieName, []byte(s.ID), m.codecs...)
	if err != nil {
		return nil, fmt.Errorf("encoding session cookie: %w", err)
	}
	m.clearPlainCookie(w, r)
	http.SetCookie(w, m.cookie(r, value, int(lifetime/time.Second)))
	return s, nil
}

// End signs the request out: it deletes s, the session that authenticated
// the request (nil for none) whichever credential carried it (a cookie, or a
// native app's session token), and the sessions of the request's session
// cookies, and clears the cookie.
func (m *Manager) End(ctx context.Context, w http.ResponseWriter, r *http.Request, s *store.Session) error {
	m.expireCookies(w, r)
	ids := m.cookieSessionIDs(r, nil, maxSignOutCookies, true)
	if s != nil && !slices.Contains(ids, s.ID) {
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		if err := m.store.DeleteSession(ctx, id); err != nil {
			return err
		}
		m.ended.add(id)
	}
	return nil
}

// clearPlainCookie expires, over HTTPS, a session cookie of the plain name:
// it is never read there, but whatever planted it goes where the browser
// lets the gateway remove it.
func (m *Manager) clearPlainCookie(w http.ResponseWriter, r *http.Request) {
	if r.TLS != nil {
		http.SetCookie(w, &http.Cookie{Name: CookieName, Path: "/", MaxAge: -1, HttpOnly: true, Secure: true})
		if m.domain != "" {
			http.SetCookie(w, &http.Cookie{Name: CookieName, Path: "/", Domain: m.domain, MaxAge: -1, HttpOnly: true, Secure: true})
		}
	}
}

// cookie builds the session cookie as docs/security.md describes it:
// HttpOnly, SameSite=Lax, Secure whenever the request came over TLS, for
// the cookie domain when there is one.
func (m *Manager) cookie(r *http.Request, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     m.cookieName(r),
		Value:    value,
		Path:     "/",
		Domain:   m.domain,
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   r.TLS != nil,
		SameSite: http.SameSiteLaxMode,
	}
}

// Seal signs and encrypts value with the newest cookie key for a cookie of
// the gateway other than the session's (the flow binding). The cookie's
// name is bound in: a value sealed for one name never opens as another.
func (m *Manager) Seal(name string, value []byte) (string, error) {
	return securecookie.EncodeMulti(name, value, m.codecs...)
}

// Open returns what Seal sealed for name with any of the cookie keys; ok is
// false for anything else.
func (m *Manager) Open(name, sealed string) (value []byte, ok bool) {
	return value, securecookie.DecodeMulti(name, sealed, &value, m.codecs...) == nil
}

// clientIP is the peer address. X-Forwarded-For is not trusted here.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// headerSafe drops control characters, so a provider's profile can never
// break the identity headers built from it.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, truncate(s, 512))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
