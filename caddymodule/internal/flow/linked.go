package flow

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/provider"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// LinkNotice tells the person signing in that their new identity joined an
// existing user because both share a verified address (a link by email),
// and that every other session of that user was signed out. Browsers see it
// on a page after the callback; native apps get it in their JSON answer.
type LinkNotice struct {
	Provider        string `json:"provider"`
	AccountID       string `json:"external_account_id"`
	Email           string `json:"email_address"`
	RevokedSessions int    `json:"revoked_sessions"`
	Message         string `json:"message"`
}

// linked carries out the consequences of a sign-in outside the store (which
// ended the sessions and recorded the events): a take-over and a link by
// email are logged, and for a link by email the notice for the person is
// returned. It returns nil for any other sign-in.
func (f *Flow) linked(p *provider.Provider, out store.SignInResult) *LinkNotice {
	if len(out.Relieved) > 0 {
		f.Logger.Warn("a verified address was taken over: its holder no longer has it, and their sessions that carried it were revoked",
			zap.String("provider", p.Name()), zap.String("user_id", out.User.ID), zap.Strings("relieved_user_ids", out.Relieved))
	}
	if !out.LinkedByEmail {
		return nil
	}
	f.Logger.Warn("linked by email: a new identity joined an existing user; its other sessions were revoked",
		zap.String("provider", p.Name()), zap.String("user_id", out.User.ID),
		zap.String("external_account_id", out.Account.ID), zap.Int("revoked_sessions", len(out.RevokedSessions)))
	return &LinkNotice{
		Provider: p.Name(), AccountID: out.Account.ID, Email: out.Account.Email,
		RevokedSessions: len(out.RevokedSessions),
		Message: fmt.Sprintf("Your %s account was added to the existing account with the verified address %s, "+
			"and every other session of that account was signed out. If you don't recognise an account connected to it, disconnect it.",
			p.DisplayName(), out.Account.Email),
	}
}
