package console

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// auditShown is how many audit entries a user's page shows.
const auditShown = 20

// userPage shows one user: profile, addresses, linked accounts with their
// token state, sessions, metadata, the latest audit entries about the
// user, and the actions on them.
func (c *Console) userPage(w http.ResponseWriter, r *http.Request, page string, op operator, g Guard) {
	c.showUser(w, r, strings.TrimPrefix(page, "/users/"), op, g, http.StatusOK, nil)
}

// metadataDraft is metadata text an operator sent that was refused, shown
// again with the reason.
type metadataDraft struct {
	public, private string
	problem         i18n.Message
}

// showUser renders a user's page with status; draft, when set, replaces the
// metadata shown.
func (c *Console) showUser(w http.ResponseWriter, r *http.Request, id string, op operator, g Guard, status int, draft *metadataDraft) {
	ua, err := c.Ops.User(op.ctx, id)
	if errors.Is(err, ops.ErrNotFound) {
		c.fail(w, r, http.StatusNotFound, i18n.M("console.no_user"))
		return
	}
	if err != nil {
		c.internal(w, r, "reading a user", err)
		return
	}
	sessions, _, err := c.Ops.Sessions(op.ctx, id, ops.Page{Limit: ops.MaxLimit})
	if err != nil {
		c.internal(w, r, "reading sessions", err)
		return
	}
	u := ua.User
	view := &ui.ConsoleUser{ID: u.ID, Name: u.Name, Username: u.Username, ExternalID: u.ExternalID, ImageURL: u.ImageURL,
		Created: when(u.CreatedAt), Updated: when(u.UpdatedAt), LastSignIn: when(u.LastSignInAt), Banned: u.Banned, Locked: u.Locked(),
		PublicMetadata: indented(u.PublicMetadata), PrivateMetadata: indented(u.PrivateMetadata)}
	if draft != nil {
		view.PublicMetadata, view.PrivateMetadata, view.MetadataError = draft.public, draft.private, draft.problem
	}
	for _, e := range u.Emails {
		view.Emails = append(view.Emails, ui.EmailView{Email: e.Email, Verified: e.Verified})
	}
	now := time.Now()
	for _, a := range ua.Accounts {
		state, warn := tokenState(a, now)
		view.Accounts = append(view.Accounts, ui.ConsoleAccount{ID: a.ID, ProviderName: c.Ops.ProviderName(a.Provider),
			Email: a.Email, Username: a.Username, Scopes: a.ApprovedScopes, TokenState: state, Warn: warn,
			CanDisconnect: c.Ops.CanSignInWithout(ua.Accounts, a.ID)})
	}
	for _, s := range sessions {
		view.Sessions = append(view.Sessions, ui.ConsoleSession{Handle: sessionHandle(s.ID), Device: ui.Device(s.UserAgent),
			IP: s.IP, Created: when(s.CreatedAt), LastActive: when(s.LastActiveAt)})
	}
	entries, err := c.Ops.UserAudit(op.ctx, id, auditShown)
	if err != nil {
		c.internal(w, r, "reading audit entries", err)
		return
	}
	for _, e := range entries {
		subject := e.Target
		if e.Provider != "" {
			subject = strings.TrimSpace(c.Ops.ProviderName(e.Provider) + " " + e.ExternalAccountID)
		}
		view.Audit = append(view.Audit, ui.ConsoleAudit{When: when(e.Time), Action: i18n.Code("audit.", e.Action), Actor: e.Actor, IP: e.ClientIP, Subject: subject})
	}
	title := u.Name
	if title == "" {
		title = u.ID
	}
	pg := c.view(r, op, g, i18n.Verbatim(title), "users", c.userURL(u.ID))
	pg.Console.User = view
	c.render(w, r, status, "console-user", pg)
}

// tokenState describes an account's provider token, and whether it needs
// the operator's attention.
func tokenState(a *store.ExternalAccount, now time.Time) (i18n.Message, bool) {
	switch {
	case a.Status == store.StatusNeedsReauthorization:
		return i18n.M("console.token_reconnect"), true
	case a.Tokens.AccessToken == "":
		return i18n.M("console.token_none"), false
	case a.Tokens.Expiry.IsZero() || a.Tokens.Expiry.After(now):
		return i18n.M("console.token_fresh"), false
	case a.Tokens.RefreshToken != "":
		return i18n.M("console.token_refreshable"), false
	}
	return i18n.M("console.token_expired"), true
}

// sessionHandle names a session on a page without its id, which is a
// secret (a session token carries it).
func sessionHandle(id string) string {
	sum := sha256.Sum256([]byte("console session handle\x00" + id))
	return hex.EncodeToString(sum[:12])
}

// indented is metadata as the editor shows it: indented JSON, or nothing.
func indented(m map[string]any) string {
	if len(m) == 0 {
		return ""
	}
	b, _ := json.MarshalIndent(m, "", "  ")
	return string(b)
}

func (c *Console) userURL(id string) string { return c.base + "/users/" + id }
