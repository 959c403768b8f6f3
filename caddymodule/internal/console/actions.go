package console

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
)

// notices are the console's notices after an action, selected by
// ?notice= (the page never reflects text from the URL).
var notices = map[string]i18n.Message{
	"banned":           i18n.M("console.notice_banned"),
	"unbanned":         i18n.M("console.notice_unbanned"),
	"locked":           i18n.M("console.notice_locked"),
	"unlocked":         i18n.M("console.notice_unlocked"),
	"metadata":         i18n.M("console.notice_metadata"),
	"session_revoked":  i18n.M("console.notice_session_revoked"),
	"sessions_revoked": i18n.M("console.notice_sessions_revoked"),
	"disconnected":     i18n.M("console.notice_disconnected"),
	"deleted":          i18n.M("console.notice_deleted"),
	"redirect_added":   i18n.M("console.notice_redirect_added"),
	"redirect_removed": i18n.M("console.notice_redirect_removed"),
	"replay":           i18n.M("console.notice_replay"),
}

// userAction carries out a POST /users/{id}/{action} and sends the browser
// back to the user's page (or the list, after a deletion) with a notice.
func (c *Console) userAction(w http.ResponseWriter, r *http.Request, page string, op operator, g Guard) {
	id, action, _ := strings.Cut(strings.TrimPrefix(page, "/users/"), "/")
	if id == op.sess.UserID && (action == "ban" || action == "lock" || action == "delete") {
		c.fail(w, r, http.StatusConflict, i18n.M("console.self"))
		return
	}
	var notice string
	var err error
	switch action {
	case "ban", "unban":
		_, err = c.Ops.SetBanned(op.ctx, id, action == "ban")
		notice = action + "ned"
	case "lock", "unlock":
		_, err = c.Ops.SetLocked(op.ctx, id, action == "lock")
		notice = action + "ed"
	case "metadata":
		public, private := r.PostFormValue("public_metadata"), r.PostFormValue("private_metadata")
		err = c.setMetadata(op, id, public, private)
		if pe := (*ops.ParamError)(nil); errors.As(err, &pe) {
			c.showUser(w, r, id, op, g, http.StatusUnprocessableEntity, &metadataDraft{public, private, i18n.M("console.metadata_invalid", "field", pe.Param)})
			return
		}
		notice = "metadata"
	case "revoke-session":
		err = c.revokeSession(op, id, r.PostFormValue("session"))
		notice = "session_revoked"
	case "revoke-sessions":
		_, err = c.Ops.RevokeSessions(op.ctx, id)
		notice = "sessions_revoked"
	case "disconnect":
		_, _, err = c.Ops.DisconnectAccountKeepingSignIn(op.ctx, id, r.PostFormValue("account_id"))
		if errors.Is(err, ops.ErrLastIdentity) {
			c.fail(w, r, http.StatusConflict, i18n.M("console.last_identity"))
			return
		}
		notice = "disconnected"
	case "delete":
		if r.PostFormValue("confirm") != id {
			c.fail(w, r, http.StatusUnprocessableEntity, i18n.M("console.confirm"))
			return
		}
		if err = c.Ops.DeleteUser(op.ctx, id); err == nil {
			http.Redirect(w, r, c.base+"?notice=deleted", http.StatusSeeOther)
			return
		}
	default:
		c.fail(w, r, http.StatusNotFound, i18n.M("console.not_found"))
		return
	}
	switch {
	case errors.Is(err, ops.ErrNotFound):
		c.fail(w, r, http.StatusNotFound, i18n.M("console.gone"))
	case err != nil:
		c.internal(w, r, "console action "+action, err)
	default:
		http.Redirect(w, r, c.userURL(id)+"?notice="+notice, http.StatusSeeOther)
	}
}

// setMetadata replaces a user's public and private metadata with the JSON
// objects of the editor's texts (empty: none); text that is not a JSON
// object is a *ops.ParamError naming it.
func (c *Console) setMetadata(op operator, id, public, private string) error {
	m := ops.Metadata{}
	for _, f := range []struct {
		param, text string
		dst         **map[string]any
	}{{"public_metadata", public, &m.Public}, {"private_metadata", private, &m.Private}} {
		var v map[string]any
		if strings.TrimSpace(f.text) != "" {
			if err := json.Unmarshal([]byte(f.text), &v); err != nil || v == nil {
				return &ops.ParamError{Param: f.param, Kind: ops.ParamFormat, Message: f.param + " must be a JSON object, like {\"plan\": \"pro\"}"}
			}
		}
		*f.dst = &v
	}
	_, err := c.Ops.UpdateMetadata(op.ctx, id, m, false)
	return err
}

// revokeSession ends the session of userID named by handle.
func (c *Console) revokeSession(op operator, userID, handle string) error {
	sessions, _, err := c.Ops.Sessions(op.ctx, userID, ops.Page{Limit: ops.MaxLimit})
	if err != nil {
		return err
	}
	for _, s := range sessions {
		if handle != "" && sessionHandle(s.ID) == handle {
			_, err := c.Ops.RevokeSession(op.ctx, s.ID)
			return err
		}
	}
	return ops.ErrNotFound
}
