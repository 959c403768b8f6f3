// Package audit records who did what to whom through the gateway's
// interfaces: each provider token handed out by the backend API, and each
// change an operator makes to users, sessions, linked accounts, redirect
// URLs and webhooks through the operations that the console, the backend
// API, the admin API and the CLI share.
// Entries are structured log entries of the logger socialgate.audit, at
// INFO; Record is the one place they are written, so that a persistent
// audit log can take its place.
package audit

import (
	"encoding/hex"
	"time"

	"go.uber.org/zap"
)

// Actions, each the message of its entries.
const (
	// ActionReadToken is a provider's access token handed out to a caller.
	ActionReadToken = "oauth_token.read"
	// User changes.
	ActionUserCreate = "user.create"
	ActionUserUpdate = "user.update"
	ActionUserDelete = "user.delete"
	ActionUserBan    = "user.ban"
	ActionUserUnban  = "user.unban"
	ActionUserLock   = "user.lock"
	ActionUserUnlock = "user.unlock"
	// ActionSessionRevoke ends one session; ActionSessionsRevoke all of a
	// user's (the entry never names a session: its id is a secret).
	ActionSessionRevoke  = "session.revoke"
	ActionSessionsRevoke = "session.revoke_all"
	// ActionAccountDisconnect unlinks an external account.
	ActionAccountDisconnect = "external_account.disconnect"
	// Redirect URLs and webhooks: Target names the record.
	ActionRedirectURLCreate = "redirect_url.create"
	ActionRedirectURLDelete = "redirect_url.delete"
	ActionWebhookReplay     = "webhook.replay"
)

// Entry is one audited action. Its JSON is how a store keeps the entries
// about a user (store.Store.AddUserAudit).
type Entry struct {
	// Time is when it happened.
	Time time.Time `json:"time"`
	// Actor is who did it, never a secret: "api_key:" and the key's
	// fingerprint (KeyFingerprint), "console:" and the operator's user id.
	Actor string `json:"actor"`
	// ClientIP is where the request came from (Caddy's client IP).
	ClientIP string `json:"client_ip,omitempty"`
	// Action is what was done: ActionReadToken, ActionUserUpdate, ….
	Action string `json:"action"`
	// UserID, Provider and ExternalAccountID are what it was done to.
	UserID            string `json:"user_id,omitempty"`
	Provider          string `json:"provider,omitempty"`
	ExternalAccountID string `json:"external_account_id,omitempty"`
	// Target names any other record it was done to: a redirect URL's id, a
	// webhook endpoint's name.
	Target string `json:"target,omitempty"`
}

// Log writes audit entries. A nil Log drops them.
type Log struct {
	logger *zap.Logger
}

// New returns a Log that writes to logger (named socialgate.audit by the
// app).
func New(logger *zap.Logger) *Log {
	return &Log{logger: logger}
}

// Record writes one entry: the message is its action.
func (l *Log) Record(e Entry) {
	if l == nil {
		return
	}
	l.logger.Info(e.Action,
		zap.Time("time", e.Time),
		zap.String("actor", e.Actor),
		zap.String("client_ip", e.ClientIP),
		zap.String("user_id", e.UserID),
		zap.String("provider", e.Provider),
		zap.String("external_account_id", e.ExternalAccountID),
		zap.String("target", e.Target))
}

// KeyFingerprint names an API key by its SHA-256 without revealing it: the
// first 12 hex digits, which an operator finds with
// printf %s "$KEY" | sha256sum | cut -c1-12.
func KeyFingerprint(sha256 [32]byte) string {
	return hex.EncodeToString(sha256[:6])
}
