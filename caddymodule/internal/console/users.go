package console

import (
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// pageSize is how many users a page of the list shows.
const pageSize = 50

// usersPage lists users, newest first, pageSize at a time, or those a
// search finds (ops.Service.SearchUsers).
func (c *Console) usersPage(w http.ResponseWriter, r *http.Request, page string, op operator, g Guard) {
	q := r.URL.Query()
	query := q.Get("q")
	offset, _ := strconv.Atoi(q.Get("offset"))
	p := ops.Page{Limit: pageSize, Offset: max(offset, 0)}
	found, err := c.Ops.SearchUsers(op.ctx, query, p)
	if err != nil {
		c.internal(w, r, "listing users", err)
		return
	}
	users := found.Users
	view := &ui.ConsoleUsers{Query: query, Total: found.Total, More: found.More, From: p.Offset + 1, To: p.Offset + len(users)}
	for _, u := range users {
		view.Rows = append(view.Rows, ui.ConsoleUserRow{ID: u.ID, URL: c.base + "/users/" + url.PathEscape(u.ID),
			Name: u.Name, Email: primaryOrFirst(u), ExternalID: u.ExternalID, Created: when(u.CreatedAt),
			LastSignIn: when(u.LastSignInAt), Banned: u.Banned, Locked: u.Locked()})
	}
	pageURL := func(offset int) string {
		v := url.Values{}
		if query != "" {
			v.Set("q", query)
		}
		if offset > 0 {
			v.Set("offset", strconv.Itoa(offset))
		}
		if len(v) == 0 {
			return c.base
		}
		return c.base + "?" + v.Encode()
	}
	if p.Offset > 0 {
		view.PrevURL = pageURL(max(p.Offset-pageSize, 0))
	}
	if p.Offset+len(users) < found.Total || (found.More && len(users) == pageSize) {
		view.NextURL = pageURL(p.Offset + pageSize)
	}
	pg := c.view(r, op, g, i18n.M("console.users"), "users", pageURL(p.Offset))
	pg.Console.Users = view
	c.render(w, r, http.StatusOK, "console-users", pg)
}

// primaryOrFirst is the address that names a user in the list.
func primaryOrFirst(u *store.User) string {
	if e := u.PrimaryEmail(); e != "" {
		return e
	}
	if len(u.Emails) > 0 {
		return u.Emails[0].Email
	}
	return ""
}

// when shows a time in UTC to the minute; the zero time is "never".
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}
