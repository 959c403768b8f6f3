package devprovider

import (
	"crypto/sha256"
	"net/http"
	"slices"
	"sync"
	"time"
)

// oauthError is an OAuth 2.0 error (RFC 6749 sections 4.1.2.1 and 5.2).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// status is the HTTP status when the error is a response; 0 means 400.
	status int
}

func (e *oauthError) Error() string { return e.Code + ": " + e.Description }

func oauthErr(code, description string) *oauthError {
	return &oauthError{Code: code, Description: description}
}

var errFull = &oauthError{
	Code:        "temporarily_unavailable",
	Description: "too many live codes and tokens; try again later",
	status:      http.StatusServiceUnavailable,
}

// digest is the SHA-256 of a code or token. The maps are keyed by it, so the
// raw secrets are not kept and lookups do not compare secrets byte by byte.
type digest [sha256.Size]byte

func digestOf(secret string) digest { return sha256.Sum256([]byte(secret)) }

// user is a signed-in identity.
type user struct {
	Name          string
	Email         string
	EmailVerified bool
}

// authCode is an issued authorization code and everything it is bound to.
type authCode struct {
	clientID      string
	redirectURI   string
	codeChallenge string
	nonce         string
	scope         []string
	user          user
	authTime      time.Time
	expires       time.Time
	// grant is set when the code is redeemed; the code is then kept as long
	// as its refresh token could live, so that a replay revokes the grant.
	grant *grant
}

// grant is one authorization: the family of tokens issued from one code.
type grant struct {
	clientID string
	user     user
	scope    []string
	authTime time.Time
}

type accessToken struct {
	grant   *grant
	scope   []string
	expires time.Time
}

type refreshToken struct {
	grant   *grant
	expires time.Time
	// rotated marks a refresh token that was already exchanged: presenting
	// it again means it leaked, and the whole grant is revoked.
	rotated bool
}

// tokenSet is what a successful token request hands out.
type tokenSet struct {
	grant        *grant
	scope        []string
	accessToken  string
	refreshToken string // empty without offline_access
	nonce        string // the authorization request's, on a code exchange only
}

// store holds codes and tokens in memory, behind one mutex.
type store struct {
	mu        sync.Mutex
	now       func() time.Time
	limit     int
	lastPrune time.Time
	codes     map[digest]*authCode
	access    map[digest]*accessToken
	refresh   map[digest]*refreshToken
}

func newStore(now func() time.Time, limit int) *store {
	return &store{
		now:     now,
		limit:   limit,
		codes:   make(map[digest]*authCode),
		access:  make(map[digest]*accessToken),
		refresh: make(map[digest]*refreshToken),
	}
}

// addCode stores c and returns its code.
func (st *store) addCode(c *authCode) (string, *oauthError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.makeRoom(1) {
		return "", errFull
	}
	code := randomToken()
	c.expires = st.now().Add(codeLifetime)
	st.codes[digestOf(code)] = c
	return code, nil
}

// redeemCode exchanges a code for tokens. check validates the request
// against the code; it runs under the lock, so of concurrent redemptions
// exactly one succeeds and the others are replays.
func (st *store) redeemCode(code string, check func(*authCode) *oauthError, accessTTL time.Duration) (*tokenSet, *oauthError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	c, ok := st.codes[digestOf(code)]
	now := st.now()
	if !ok || !now.Before(c.expires) {
		return nil, oauthErr("invalid_grant", "the authorization code is invalid or expired")
	}
	if c.grant != nil {
		// RFC 6749 section 4.1.2: a code used twice revokes what it issued.
		st.revokeGrant(c.grant)
		return nil, oauthErr("invalid_grant", "the authorization code was already used; its tokens are revoked")
	}
	if err := check(c); err != nil {
		return nil, err
	}
	if !st.makeRoom(2) {
		return nil, errFull
	}
	g := &grant{clientID: c.clientID, user: c.user, scope: c.scope, authTime: c.authTime}
	c.grant = g
	set := st.issue(g, c.scope, accessTTL)
	set.nonce = c.nonce
	if set.refreshToken != "" {
		c.expires = now.Add(refreshTokenLifetime)
	} else {
		c.expires = now.Add(max(accessTTL, codeLifetime))
	}
	return set, nil
}

// rotateRefresh exchanges a refresh token for a new access token and a new
// refresh token. A rotated token presented again revokes the whole grant.
// A non-empty scope narrows the new access token's scope; the new refresh
// token keeps the grant's scope (RFC 6749 section 6).
func (st *store) rotateRefresh(token, clientID string, scope []string, accessTTL time.Duration) (*tokenSet, *oauthError) {
	st.mu.Lock()
	defer st.mu.Unlock()
	key := digestOf(token)
	rt, ok := st.refresh[key]
	if !ok || !st.now().Before(rt.expires) || rt.grant.clientID != clientID {
		return nil, oauthErr("invalid_grant", "the refresh token is invalid or expired")
	}
	if rt.rotated {
		st.revokeGrant(rt.grant)
		return nil, oauthErr("invalid_grant", "the refresh token was already used; all tokens of this grant are revoked")
	}
	for _, sc := range scope {
		if !slices.Contains(rt.grant.scope, sc) {
			return nil, oauthErr("invalid_scope", "scope "+sc+" was not granted")
		}
	}
	narrowed := rt.grant.scope
	if len(scope) > 0 {
		narrowed = slices.DeleteFunc(slices.Clone(rt.grant.scope), func(sc string) bool {
			return !slices.Contains(scope, sc)
		})
	}
	if !st.makeRoom(2) {
		return nil, errFull
	}
	rt.rotated = true
	return st.issue(rt.grant, narrowed, accessTTL), nil
}

// issue creates an access token with scope, and a refresh token when the
// grant includes offline_access. The caller holds the lock.
func (st *store) issue(g *grant, scope []string, accessTTL time.Duration) *tokenSet {
	now := st.now()
	set := &tokenSet{grant: g, scope: scope, accessToken: randomToken()}
	st.access[digestOf(set.accessToken)] = &accessToken{grant: g, scope: scope, expires: now.Add(accessTTL)}
	if slices.Contains(g.scope, "offline_access") {
		set.refreshToken = randomToken()
		st.refresh[digestOf(set.refreshToken)] = &refreshToken{grant: g, expires: now.Add(refreshTokenLifetime)}
	}
	return set
}

// lookupAccess returns a live access token.
func (st *store) lookupAccess(token string) (*accessToken, bool) {
	st.mu.Lock()
	defer st.mu.Unlock()
	at, ok := st.access[digestOf(token)]
	if !ok || !st.now().Before(at.expires) {
		return nil, false
	}
	return at, true
}

// revoke revokes a token issued to clientID (RFC 7009). Revoking a refresh
// token revokes its whole grant, access tokens included. Unknown tokens are
// not an error.
func (st *store) revoke(token, clientID string) *oauthError {
	st.mu.Lock()
	defer st.mu.Unlock()
	key := digestOf(token)
	if at, ok := st.access[key]; ok {
		if at.grant.clientID != clientID {
			return oauthErr("unauthorized_client", "the token was issued to another client")
		}
		delete(st.access, key)
	}
	if rt, ok := st.refresh[key]; ok {
		if rt.grant.clientID != clientID {
			return oauthErr("unauthorized_client", "the token was issued to another client")
		}
		st.revokeGrant(rt.grant)
	}
	return nil
}

// revokeGrant deletes every token of g. The caller holds the lock. It scans
// all tokens: revocation is rare, and an index would have to be kept in step.
func (st *store) revokeGrant(g *grant) {
	for k, at := range st.access {
		if at.grant == g {
			delete(st.access, k)
		}
	}
	for k, rt := range st.refresh {
		if rt.grant == g {
			delete(st.refresh, k)
		}
	}
}

// makeRoom reports whether n more entries fit under the cap, pruning expired
// entries first (at most once a second, and whenever the store looks full).
// The caller holds the lock.
func (st *store) makeRoom(n int) bool {
	now := st.now()
	if now.Sub(st.lastPrune) >= time.Second || st.size()+n > st.limit {
		st.lastPrune = now
		for k, c := range st.codes {
			if !now.Before(c.expires) {
				delete(st.codes, k)
			}
		}
		for k, at := range st.access {
			if !now.Before(at.expires) {
				delete(st.access, k)
			}
		}
		for k, rt := range st.refresh {
			if !now.Before(rt.expires) {
				delete(st.refresh, k)
			}
		}
	}
	return st.size()+n <= st.limit
}

func (st *store) size() int { return len(st.codes) + len(st.access) + len(st.refresh) }
