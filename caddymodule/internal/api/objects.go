package gateway

import (
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// userJSON shapes a user like Clerk's User object, so a custom front end
// written for Clerk's JSON reads it unchanged. Times are Unix milliseconds.
// Token material is never part of it.
func userJSON(u *store.User, accounts []*store.ExternalAccount, s *store.Session) map[string]any {
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
		eacs = append(eacs, map[string]any{
			"object":           "external_account",
			"id":               a.ID,
			"provider":         "oauth_" + a.Provider,
			"provider_user_id": a.Subject,
			"email_address":    a.Email,
			"username":         a.Username,
			"image_url":        a.ImageURL,
			"approved_scopes":  strings.Join(a.ApprovedScopes, " "),
			"label":            a.Label,
			"verification":     map[string]any{"status": a.Status},
			"created_at":       a.CreatedAt.UnixMilli(),
			"updated_at":       a.UpdatedAt.UnixMilli(),
		})
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
		"session_id":            s.ID,
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
