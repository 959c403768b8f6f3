// Package audit records who did what to whom through the gateway's
// interfaces: each provider token handed out and each change to a user
// made through the operations (the backend API, the admin API, the CLI).
// Entries are structured log entries of the logger socialgate.audit, at
// INFO; Record is the one place they are written, so that a persistent
// audit log can take its place.
package audit

import (
	"encoding/hex"
	"time"

	"go.uber.org/zap"
)

// Actions. ActionReadToken is a provider's access token handed out to a
// caller; the others are changes to a user.
const (
	ActionReadToken  = "oauth_token.read"
	ActionUserCreate = "user.create"
	ActionUserUpdate = "user.update"
	ActionUserDelete = "user.delete"
	ActionUserBan    = "user.ban"
	ActionUserUnban  = "user.unban"
	ActionUserLock   = "user.lock"
	ActionUserUnlock = "user.unlock"
)

// Entry is one audited action.
type Entry struct {
	// Time is when it happened.
	Time time.Time
	// Actor is who did it, never a secret: "api_key:" and the key's
	// fingerprint (KeyFingerprint).
	Actor string
	// ClientIP is where the request came from (Caddy's client IP).
	ClientIP string
	// Action is what was done: ActionReadToken, ActionUserUpdate, ….
	Action string
	// UserID, Provider and ExternalAccountID are what it was done to.
	UserID, Provider, ExternalAccountID string
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
		zap.String("external_account_id", e.ExternalAccountID))
}

// KeyFingerprint names an API key by its SHA-256 without revealing it: the
// first 12 hex digits, which an operator finds with
// printf %s "$KEY" | sha256sum | cut -c1-12.
func KeyFingerprint(sha256 [32]byte) string {
	return hex.EncodeToString(sha256[:6])
}
