// Package api is the gateway's backend API: JSON over HTTP for the apps
// behind it, authenticated with an API key (Authorization: Bearer <key>),
// shaped like Clerk's Backend API. Errors are Clerk's: {"errors":[{code,
// message, long_message, meta}], "clerk_trace_id"}. Every route is an operation of package ops; this package only reads the
// request, writes the answer and maps ops' errors to Clerk's codes.
package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Options configure an API.
type Options struct {
	// Ops runs the operations. Required.
	Ops *ops.Service
	// Keys are the accepted API keys; several allow rotation.
	Keys []string
	// ClientIP names the caller in audit entries; default: the peer address.
	ClientIP func(r *http.Request) string
	// JWKS returns the JSON Web Key Set that verifies the gateway's
	// identity tokens, served at GET /jwks; nil: that route is not found.
	JWKS   func() []byte
	Logger *zap.Logger
}

// API serves the backend API. Safe for concurrent use.
type API struct {
	ops       *ops.Service
	clientIP  func(r *http.Request) string
	jwks      func() []byte
	logger    *zap.Logger
	keyHashes [][32]byte
	mux       *http.ServeMux
}

// New returns an API. With no keys, every request is refused.
func New(o Options) *API {
	a := &API{ops: o.Ops, clientIP: o.ClientIP, jwks: o.JWKS, logger: o.Logger, mux: http.NewServeMux()}
	if a.logger == nil {
		a.logger = zap.NewNop()
	}
	if a.clientIP == nil {
		a.clientIP = func(r *http.Request) string {
			host, _, _ := net.SplitHostPort(r.RemoteAddr)
			return host
		}
	}
	for _, k := range o.Keys {
		a.keyHashes = append(a.keyHashes, sha256.Sum256([]byte(k)))
	}
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /users":                                        a.listUsers,
		"GET /users/count":                                  a.countUsers,
		"POST /users":                                       a.createUser,
		"GET /users/{id}":                                   a.getUser,
		"PATCH /users/{id}":                                 a.updateUser,
		"DELETE /users/{id}":                                a.deleteUser,
		"PATCH /users/{id}/metadata":                        a.updateMetadata,
		"PUT /users/{id}/metadata":                          a.updateMetadata,
		"POST /users/{id}/ban":                              a.setUserFlag("ban"),
		"POST /users/{id}/unban":                            a.setUserFlag("unban"),
		"POST /users/{id}/lock":                             a.setUserFlag("lock"),
		"POST /users/{id}/unlock":                           a.setUserFlag("unlock"),
		"GET /users/{id}/oauth_access_tokens/{provider}":    a.oauthAccessTokens,
		"DELETE /users/{id}/external_accounts/{account_id}": a.deleteExternalAccount,
		"GET /sessions":                                     a.listSessions,
		"GET /sessions/{id}":                                a.getSession,
		"GET /jwks":                                         a.getJWKS,
		"POST /sessions/{id}/revoke":                        a.revokeSession,
		"GET /redirect_urls":                                a.listRedirectURLs,
		"POST /redirect_urls":                               a.createRedirectURL,
		"GET /redirect_urls/{id}":                           a.getRedirectURL,
		"DELETE /redirect_urls/{id}":                        a.deleteRedirectURL,
		"GET /providers":                                    a.listProviders,
		"GET /webhooks":                                     a.listWebhooks,
		"POST /webhooks/{name}/replay":                      a.replayWebhook,
	} {
		a.mux.HandleFunc(pattern, h)
	}
	// Any other method or path, rather than ServeMux's plain-text 404 and 405.
	a.mux.HandleFunc("/", notFound)
	return a
}

// ServeHTTP serves path, the part of the URL after the API's prefix
// (/users/…, /sessions/…), ignoring a leading or trailing slash.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request, p string) {
	key, ok := a.authorized(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="socialgate api"`)
		writeError(w, http.StatusUnauthorized, "authentication_invalid", "A valid API key is required: Authorization: Bearer <api key>.")
		return
	}
	p = "/" + strings.Trim(p, "/")
	// ServeMux would redirect to the clean path, and answer HEAD with a
	// GET route: neither is an endpoint.
	if path.Clean(p) != p || r.Method == http.MethodHead {
		notFound(w, r)
		return
	}
	r = r.WithContext(ops.WithActor(r.Context(), ops.Actor{ID: "api_key:" + key, ClientIP: a.clientIP(r)}))
	u := *r.URL
	u.Path, u.RawPath = p, ""
	r.URL = &u
	a.mux.ServeHTTP(w, r)
}

// authorized compares the presented key with every accepted key in constant
// time, and names the key that matched by its fingerprint. A browser's
// session cookie is never enough.
func (a *API) authorized(r *http.Request) (fingerprint string, ok bool) {
	key, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || key == "" || len(a.keyHashes) == 0 {
		return "", false
	}
	got := sha256.Sum256([]byte(key))
	match, which := 0, 0
	for i, want := range a.keyHashes {
		eq := subtle.ConstantTimeCompare(got[:], want[:])
		match |= eq
		which = subtle.ConstantTimeSelect(eq, i, which)
	}
	if match != 1 {
		return "", false
	}
	return audit.KeyFingerprint(a.keyHashes[which]), true
}

// page reads limit and offset; paginated=true asks for {data, total_count}.
func page(r *http.Request, defLimit int) (ops.Page, bool, error) {
	q := r.URL.Query()
	p, err := ops.ParsePage(q.Get("limit"), q.Get("offset"), defLimit)
	return p, q.Get("paginated") == "true", err
}

// writeList writes items as a plain array, or {data, total_count} when
// paginated.
func writeList(w http.ResponseWriter, paginated bool, items []map[string]any, total int) {
	if items == nil {
		items = []map[string]any{}
	}
	if paginated {
		writeJSON(w, http.StatusOK, map[string]any{"data": items, "total_count": total})
		return
	}
	writeJSON(w, http.StatusOK, items)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, message string) {
	writeErrorMeta(w, status, code, message, nil)
}

// writeErrorMeta writes Clerk's error shape: {errors: [{code, message,
// long_message, meta}], clerk_trace_id}, with the trace id also in the
// Clerk-Trace-Id header, as Clerk's SDKs read it.
func writeErrorMeta(w http.ResponseWriter, status int, code, message string, meta map[string]any) {
	if meta == nil {
		meta = map[string]any{}
	}
	trace := store.NewID("trace")
	w.Header().Set("Clerk-Trace-Id", trace)
	writeJSON(w, status, map[string]any{
		"errors":         []any{map[string]any{"code": code, "message": message, "long_message": message, "meta": meta}},
		"clerk_trace_id": trace,
	})
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeError(w, http.StatusNotFound, "resource_not_found", "There is no such endpoint.")
}

// paramCodes are the status and Clerk code of each kind of parameter error.
var paramCodes = map[ops.ParamKind]struct {
	status int
	code   string
}{
	ops.ParamInvalid: {http.StatusBadRequest, "form_param_invalid"},
	ops.ParamMissing: {http.StatusUnprocessableEntity, "form_param_missing"},
	ops.ParamFormat:  {http.StatusUnprocessableEntity, "form_param_format_invalid"},
	ops.ParamValue:   {http.StatusUnprocessableEntity, "form_param_value_invalid"},
	ops.ParamTaken:   {http.StatusUnprocessableEntity, "form_identifier_exists"},
	// A parameter socialgate does not offer: Clerk's code for one it does not know.
	ops.ParamUnsupported: {http.StatusUnprocessableEntity, "form_param_unknown"},
}

// fail answers an operation's error in Clerk's shape: a missing record is
// 404, a bad parameter 400 or 422, a token that cannot be had 422, 502 or 503,
// anything else 500 (logged, never shown).
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var (
		nf *ops.NotFoundError
		pe *ops.ParamError
		ae *ops.AccountError
		nr *ops.NotRetainedError
		// refused is the provider's refusal of a refresh.
		refused *ops.RefusedError
	)
	switch {
	case errors.As(err, &nf) && nf.Kind == ops.KindWebhook:
		writeError(w, http.StatusNotFound, "resource_not_found", "No webhook endpoint of that name is configured.")
	case errors.As(err, &nf):
		writeError(w, http.StatusNotFound, "resource_not_found", "No "+nf.Kind+" with that id.")
	case errors.As(err, &pe):
		c := paramCodes[pe.Kind]
		writeErrorMeta(w, c.status, c.code, sentence(pe.Message), map[string]any{"param_name": pe.Param})
	case errors.As(err, &ae) && errors.Is(err, ops.ErrNeedsReauthorization):
		writeErrorMeta(w, http.StatusUnprocessableEntity, "oauth_token_needs_reauthorization",
			fmt.Sprintf("The %s account must be reconnected by the user: the provider no longer accepts its grant.", ae.Provider),
			map[string]any{"external_account_id": ae.AccountID})
	case errors.As(err, &ae) && errors.As(err, &refused):
		writeErrorMeta(w, http.StatusBadGateway, "oauth_provider_refused",
			fmt.Sprintf("The token expired and %s refused to refresh it (%s): the client's settings at the provider may need fixing.", ae.Provider, refused.Reason()),
			map[string]any{"external_account_id": ae.AccountID})
	case errors.As(err, &ae) && errors.Is(err, ops.ErrProviderUnavailable):
		w.Header().Set("Retry-After", "30")
		writeErrorMeta(w, http.StatusServiceUnavailable, "oauth_provider_unavailable",
			fmt.Sprintf("The token expired and %s could not refresh it right now. Retry later.", ae.Provider),
			map[string]any{"external_account_id": ae.AccountID})
	case errors.As(err, &nr):
		writeErrorMeta(w, http.StatusUnprocessableEntity, "webhook_events_not_retained", nr.Error(),
			map[string]any{"replayable_from": replayableFrom(nr.Retain, nr.Earliest)})
	default:
		a.logger.Error("backend API request failed", zap.String("route", r.Pattern), zap.Error(err))
		writeError(w, http.StatusInternalServerError, "internal_error", "Something went wrong on our side.")
	}
}

// sentence makes an ops message a sentence: its first letter upper case
// (unless it begins with a parameter's name, like event_id) and a final
// period.
func sentence(msg string) string {
	first, _, _ := strings.Cut(msg, " ")
	if msg != "" && !strings.Contains(first, "_") {
		r, n := utf8.DecodeRuneInString(msg)
		msg = string(unicode.ToUpper(r)) + msg[n:]
	}
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}
