package api

import (
	"slices"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// The JSON objects are Clerk's Backend API objects, field for field as
// Clerk's SDKs (clerk-sdk-go, @clerk/backend) decode them, so code written
// against Clerk reads them unchanged: every list present (empty, never
// null), absent values null, times in Unix milliseconds. Fields Clerk has
// and socialgate has no use for (phone numbers, passwords, MFA,
// organizations) are there with their empty value. Token material is never
// part of them, except in OAuthAccessToken, which exists to hand it out.

// User is the user object of the backend API and of webhooks, with its
// email addresses and external accounts, private metadata included.
func User(u *store.User, accounts []*store.ExternalAccount) map[string]any {
	first, last := u.Names()
	emails := make([]map[string]any, 0, len(u.Emails))
	primaryID := any(nil)
	for _, e := range u.Emails {
		emails = append(emails, EmailAddress(u, &e, accounts))
		if stands(&e) && primaryID == nil {
			primaryID = EmailAddressID(u.ID, e.Email)
		}
	}
	eacs := make([]map[string]any, 0, len(accounts))
	for _, a := range accounts {
		eacs = append(eacs, ExternalAccount(u, a))
	}
	none := []any{}
	return map[string]any{
		"object":                          "user",
		"id":                              u.ID,
		"external_id":                     nullIfEmpty(u.ExternalID),
		"username":                        nullIfEmpty(u.Username),
		"first_name":                      nullIfEmpty(first),
		"last_name":                       nullIfEmpty(last),
		"name":                            u.Name,
		"image_url":                       u.ImageURL,
		"has_image":                       u.ImageURL != "",
		"primary_email_address_id":        primaryID,
		"primary_email_address":           u.PrimaryEmail(),
		"primary_phone_number_id":         nil,
		"primary_web3_wallet_id":          nil,
		"password_enabled":                false,
		"two_factor_enabled":              false,
		"totp_enabled":                    false,
		"backup_code_enabled":             false,
		"email_addresses":                 emails,
		"phone_numbers":                   none,
		"web3_wallets":                    none,
		"passkeys":                        none,
		"external_accounts":               eacs,
		"saml_accounts":                   none,
		"enterprise_accounts":             none,
		"public_metadata":                 orEmpty(u.PublicMetadata),
		"private_metadata":                orEmpty(u.PrivateMetadata),
		"unsafe_metadata":                 orEmpty(u.UnsafeMetadata),
		"banned":                          u.Banned,
		"locked":                          u.Locked(),
		"lockout_expires_in_seconds":      nil, // a lock lasts until unlocked
		"verification_attempts_remaining": nil,
		"delete_self_enabled":             false,
		"create_organization_enabled":     false,
		"last_sign_in_at":                 millisOrNil(u.LastSignInAt),
		"last_active_at":                  millisOrNil(u.LastSignInAt),
		"legal_accepted_at":               nil,
		"created_at":                      u.CreatedAt.UnixMilli(),
		"updated_at":                      u.UpdatedAt.UnixMilli(),
	}
}

// FrontendUser is User as the signed-in person may see it (GET /_auth/me):
// without the private metadata, which never leaves the backend.
func FrontendUser(u *store.User, accounts []*store.ExternalAccount) map[string]any {
	obj := User(u, accounts)
	delete(obj, "private_metadata")
	return obj
}

// stands reports whether e stands for its user: verified, and a plain
// address (store.ValidEmail). One stored before that rule held that is not
// (" victim@example.org") is listed unverified, as User.PrimaryEmail skips
// it.
func stands(e *store.EmailAddress) bool { return e.Verified && store.ValidEmail(e.Email) }

// EmailAddress is an email address object. Its verification strategy
// names who verified it: from_oauth_<provider> for the first account that
// vouches for it, admin for the backend API; linked_to lists the accounts
// that assert it.
func EmailAddress(u *store.User, e *store.EmailAddress, accounts []*store.ExternalAccount) map[string]any {
	verification := map[string]any{"status": "unverified", "strategy": nil, "attempts": nil, "expire_at": nil}
	linked := []map[string]any{}
	for _, a := range accounts {
		if !strings.EqualFold(a.Email, e.Email) {
			continue
		}
		linked = append(linked, map[string]any{"type": ProviderID(a.Provider), "id": a.ID})
		if stands(e) && slices.Contains(e.VerifiedBy, a.ID) && verification["strategy"] == nil {
			verification["strategy"] = "from_" + ProviderID(a.Provider)
		}
	}
	if stands(e) {
		verification["status"] = "verified"
		if verification["strategy"] == nil {
			verification["strategy"] = "admin"
		}
	}
	return map[string]any{
		"object":        "email_address",
		"id":            EmailAddressID(u.ID, e.Email),
		"email_address": e.Email,
		"reserved":      false,
		"verification":  verification,
		"linked_to":     linked,
	}
}

// ExternalAccount is an external account object, of user u (nil when only
// the account is at hand: identification_id is then null). Its
// verification status is "verified" or socialgate's
// "needs_reauthorization"; first and last name come from its name.
func ExternalAccount(u *store.User, a *store.ExternalAccount) map[string]any {
	first, last := (&store.User{Name: a.Name}).Names()
	var identification any
	if u != nil && a.Email != "" && slices.ContainsFunc(u.Emails, func(e store.EmailAddress) bool { return strings.EqualFold(e.Email, a.Email) }) {
		identification = EmailAddressID(u.ID, a.Email)
	}
	return map[string]any{
		"object":            "external_account",
		"id":                a.ID,
		"user_id":           a.UserID,
		"provider":          ProviderID(a.Provider),
		"identification_id": identification,
		"provider_user_id":  a.Subject,
		"approved_scopes":   strings.Join(a.ApprovedScopes, " "),
		"email_address":     a.Email,
		"first_name":        first,
		"last_name":         last,
		"avatar_url":        a.ImageURL,
		"image_url":         a.ImageURL,
		"username":          nullIfEmpty(a.Username),
		"phone_number":      nil,
		"public_metadata":   map[string]any{},
		"label":             nullIfEmpty(a.Label),
		"groups":            orEmptyList(a.Groups),
		"verification":      map[string]any{"status": a.Status, "strategy": ProviderID(a.Provider), "attempts": nil, "expire_at": nil},
		"created_at":        a.CreatedAt.UnixMilli(),
		"updated_at":        a.UpdatedAt.UnixMilli(),
	}
}

// Session is a session object with its status: active, ended or revoked.
// expire_at is when it ends unless used again (see session_idle_timeout),
// abandon_at when it ends however busy; last_active_at is its last
// recorded use (its creation for sessions from before it was recorded).
// client_id names the browser or app that holds it, derived from the
// session (socialgate has one session per client).
func Session(s *store.Session, status string) map[string]any {
	lastActive, abandon := s.LastActiveAt, s.AbandonAt
	if lastActive.IsZero() {
		lastActive = s.CreatedAt
	}
	if abandon.IsZero() {
		abandon = s.ExpiresAt
	}
	updated := lastActive
	if s.UpdatedAt.After(updated) {
		updated = s.UpdatedAt
	}
	return map[string]any{
		"object":                      "session",
		"id":                          s.ID,
		"client_id":                   derivedID("client", s.ID),
		"user_id":                     s.UserID,
		"status":                      status,
		"last_active_organization_id": nil,
		"actor":                       nil,
		"latest_activity":             map[string]any{"object": "session_activity", "id": derivedID("sess_activity", s.ID), "ip_address": s.IP, "is_mobile": false},
		"created_at":                  s.CreatedAt.UnixMilli(),
		"updated_at":                  updated.UnixMilli(),
		"last_active_at":              lastActive.UnixMilli(),
		"expire_at":                   s.ExpiresAt.UnixMilli(),
		"abandon_at":                  abandon.UnixMilli(),
		"user_agent":                  s.UserAgent,
		"ip_address":                  s.IP,
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
		"label":               nullIfEmpty(a.Label),
		"public_metadata":     map[string]any{},
	}
	if !a.Tokens.Expiry.IsZero() {
		item["expires_at"] = a.Tokens.Expiry.Unix()
	}
	return item
}

// Deleted is the object of a deleted resource: {object, id, deleted}.
func Deleted(object, id string) map[string]any {
	return map[string]any{"object": object, "id": id, "deleted": true}
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

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func millisOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}
