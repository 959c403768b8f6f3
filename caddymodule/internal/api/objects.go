package api

import (
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The JSON objects are shaped like Clerk's Backend API objects, so code
// written against Clerk's JSON reads them unchanged. Times are Unix
// milliseconds, as in Clerk. Token material is never part of them, except in
// OAuthAccessToken, which exists to hand it out.

// ProviderID is the Clerk-style provider id of a provider name: oauth_github.
func ProviderID(name string) string { return "oauth_" + name }

// User is a user object with its email addresses and external accounts.
func User(u *store.User, accounts []*store.ExternalAccount) map[string]any {
	emails := make([]map[string]any, 0, len(u.Emails))
	for _, e := range u.Emails {
		status := "unverified"
		if e.Verified {
			status = "verified"
		}
		emails = append(emails, map[string]any{
			"object":        "email_address",
			"email_address": e.Email,
			"verification":  map[string]any{"status": status},
		})
	}
	eacs := make([]map[string]any, 0, len(accounts))
	for _, a := range accounts {
		eacs = append(eacs, ExternalAccount(a))
	}
	return map[string]any{
		"object":                "user",
		"id":                    u.ID,
		"name":                  u.Name,
		"image_url":             u.ImageURL,
		"primary_email_address": u.PrimaryEmail(),
		"email_addresses":       emails,
		"external_accounts":     eacs,
		"public_metadata":       orEmpty(u.PublicMetadata),
		"created_at":            u.CreatedAt.UnixMilli(),
		"updated_at":            u.UpdatedAt.UnixMilli(),
		"last_sign_in_at":       u.LastSignInAt.UnixMilli(),
	}
}

// ExternalAccount is an external account object. Its verification status is
// "verified" or "needs_reauthorization".
func ExternalAccount(a *store.ExternalAccount) map[string]any {
	return map[string]any{
		"object":           "external_account",
		"id":               a.ID,
		"provider":         ProviderID(a.Provider),
		"provider_user_id": a.Subject,
		"email_address":    a.Email,
		"username":         a.Username,
		"image_url":        a.ImageURL,
		"approved_scopes":  strings.Join(a.ApprovedScopes, " "),
		"groups":           orEmptyList(a.Groups),
		"label":            a.Label,
		"verification":     map[string]any{"status": a.Status},
		"created_at":       a.CreatedAt.UnixMilli(),
		"updated_at":       a.UpdatedAt.UnixMilli(),
	}
}

// Session is a session object with its status: active or revoked.
// expire_at is when it ends unless used again (see session_idle_timeout),
// abandon_at when it ends however busy; last_active_at is its last
// recorded use (its creation for sessions from before it was recorded).
func Session(s *store.Session, status string) map[string]any {
	lastActive, abandon := s.LastActiveAt, s.AbandonAt
	if lastActive.IsZero() {
		lastActive = s.CreatedAt
	}
	if abandon.IsZero() {
		abandon = s.ExpiresAt
	}
	return map[string]any{
		"object":         "session",
		"id":             s.ID,
		"user_id":        s.UserID,
		"status":         status,
		"created_at":     s.CreatedAt.UnixMilli(),
		"last_active_at": lastActive.UnixMilli(),
		"expire_at":      s.ExpiresAt.UnixMilli(),
		"abandon_at":     abandon.UnixMilli(),
		"user_agent":     s.UserAgent,
		"ip_address":     s.IP,
	}
}

// OAuthAccessToken is one item of the oauth_access_tokens list: the
// account's fresh access token. The refresh token is never returned, nor
// the ID token: it is the provider's statement to this gateway that the
// person signed in, not a credential for anything else, and whoever holds
// one could present it as a sign-in elsewhere. Clerk's object carries
// id_token only when available; here it never is.
func OAuthAccessToken(a *store.ExternalAccount) map[string]any {
	item := map[string]any{
		"object":              "oauth_access_token",
		"external_account_id": a.ID,
		"provider":            ProviderID(a.Provider),
		"token":               a.Tokens.AccessToken,
		"scopes":              orEmptyList(a.ApprovedScopes),
		"label":               a.Label,
		"public_metadata":     map[string]any{},
	}
	if !a.Tokens.Expiry.IsZero() {
		item["expires_at"] = a.Tokens.Expiry.Unix()
	}
	return item
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func orEmptyList(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}
