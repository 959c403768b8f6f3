package api

import (
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// unsupportedUserFilters are the parameters of Clerk's user list that
// socialgate has no data for (phone numbers, wallets, organizations) or
// does not filter by: refused, rather than ignored, so that a list is
// never wider than its caller asked.
var unsupportedUserFilters = []string{"phone_number", "web3_wallet", "organization_id", "email_address_query",
	"phone_number_query", "username_query", "name_query", "last_active_at_since", "created_at_before",
	"created_at_after", "last_active_at_before", "last_active_at_after"}

// userQuery reads the filters and the order of Clerk's user list (the
// page is read by page): email_address, user_id, external_id and username
// (each repeatable: a user matches one of the values), query (part of the
// id, an address, the username, external id or name), banned, order_by.
func userQuery(q url.Values) (store.UserQuery, error) {
	for _, name := range unsupportedUserFilters {
		if q.Has(name) {
			return store.UserQuery{}, &ops.ParamError{Param: name, Kind: ops.ParamUnsupported,
				Message: name + " is not a filter socialgate offers (see docs/clerk.md)"}
		}
	}
	f := &store.UserFilter{IDs: q["user_id"], ExternalIDs: q["external_id"], Usernames: q["username"], Query: q.Get("query")}
	uq := store.UserQuery{OrderBy: q.Get("order_by")}
	if emails := q["email_address"]; len(emails) == 1 {
		uq.Email = emails[0]
	} else {
		f.Emails = emails
	}
	switch q.Get("banned") {
	case "":
	case "true", "false":
		banned := q.Get("banned") == "true"
		f.Banned = &banned
	default:
		return uq, &ops.ParamError{Param: "banned", Kind: ops.ParamFormat, Message: "banned is true or false"}
	}
	if len(f.IDs)+len(f.ExternalIDs)+len(f.Usernames)+len(f.Emails) > 0 || f.Query != "" || f.Banned != nil {
		uq.Filter = f
	}
	return uq, nil
}

// GET /users?limit=&offset=&order_by=&email_address=&user_id=&…: an array,
// as Clerk's (with paginated=true, {data, total_count}).
func (a *API) listUsers(w http.ResponseWriter, r *http.Request) {
	p, paginated, err := page(r, 10)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q, err := userQuery(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	q.Limit, q.Offset = p.Limit, p.Offset
	users, total, err := a.ops.Users(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(users))
	for _, u := range users {
		items = append(items, User(u.User, u.Accounts))
	}
	writeList(w, paginated, items, total)
}

// GET /users/count with the filters of GET /users: {object: "total_count",
// total_count}. Clerk's SDKs call it beside the list for its total; a
// limit or offset they send along is ignored.
func (a *API) countUsers(w http.ResponseWriter, r *http.Request) {
	q, err := userQuery(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	n, err := a.ops.CountUsers(r.Context(), q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "total_count", "total_count": n})
}

// metadataParams are the metadata objects of a request body, each absent,
// null or an object.
type metadataParams struct {
	PublicMetadata  json.RawMessage `json:"public_metadata"`
	PrivateMetadata json.RawMessage `json:"private_metadata"`
	UnsafeMetadata  json.RawMessage `json:"unsafe_metadata"`
}

// metadata reads the objects given: absent is nil, null a pointer to a
// nil map; a value that is not an object is a *ops.ParamError.
func (m metadataParams) metadata() (ops.Metadata, error) {
	var out ops.Metadata
	for _, f := range []struct {
		name string
		raw  json.RawMessage
		dst  **map[string]any
	}{{"public_metadata", m.PublicMetadata, &out.Public}, {"private_metadata", m.PrivateMetadata, &out.Private}, {"unsafe_metadata", m.UnsafeMetadata, &out.Unsafe}} {
		if len(f.raw) == 0 {
			continue
		}
		var v map[string]any
		if f.raw[0] != '{' && string(f.raw) != "null" || json.Unmarshal(f.raw, &v) != nil {
			return out, &ops.ParamError{Param: f.name, Kind: ops.ParamFormat, Message: f.name + " must be a JSON object"}
		}
		*f.dst = &v
	}
	return out, nil
}

// userParams are the fields of a user that create and update set.
// Password and legal checks have nothing to skip here: accepted, unused.
type userParams struct {
	FirstName  *string `json:"first_name"`
	LastName   *string `json:"last_name"`
	Username   *string `json:"username"`
	ExternalID *string `json:"external_id"`
	metadataParams
	SkipPasswordChecks bool `json:"skip_password_checks"`
	SkipLegalChecks    bool `json:"skip_legal_checks"`
}

// readChanges reads a body into in, whose userParams are p, and returns
// the changes they make; on a mistake it answers it and returns false.
func (a *API) readChanges(w http.ResponseWriter, r *http.Request, in any, p *userParams) (ops.UserChanges, bool) {
	if !readJSON(w, r, in) {
		return ops.UserChanges{}, false
	}
	m, err := p.metadata()
	if err != nil {
		a.fail(w, r, err)
		return ops.UserChanges{}, false
	}
	return ops.UserChanges{FirstName: p.FirstName, LastName: p.LastName, Username: p.Username, ExternalID: p.ExternalID, Metadata: m}, true
}

// POST /users {email_address: [...], first_name, last_name, username,
// external_id, public_metadata, private_metadata, unsafe_metadata}: a
// user without a linked account (ops.Service.CreateUser), which the first
// sign-in asserting one of its addresses as verified joins.
func (a *API) createUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		userParams
		EmailAddress            []string `json:"email_address"`
		SkipPasswordRequirement bool     `json:"skip_password_requirement"`
	}
	c, ok := a.readChanges(w, r, &in, &in.userParams)
	if !ok {
		return
	}
	a.writeUser(w, r)(a.ops.CreateUser(r.Context(), in.EmailAddress, c))
}

// PATCH /users/{id}: sets the fields given; a metadata object given
// replaces the user's whole (PATCH /users/{id}/metadata merges).
func (a *API) updateUser(w http.ResponseWriter, r *http.Request) {
	var in struct {
		userParams
		NotifyPrimaryEmailAddressChanged bool `json:"notify_primary_email_address_changed"`
	}
	c, ok := a.readChanges(w, r, &in, &in.userParams)
	if !ok {
		return
	}
	a.writeUser(w, r)(a.ops.UpdateUser(r.Context(), r.PathValue("id"), c))
}

// PATCH /users/{id}/metadata deep-merges each metadata object given into
// the user's (a null value removes its key, at any depth); PUT replaces
// each one given. Either way an object given as null is cleared.
func (a *API) updateMetadata(w http.ResponseWriter, r *http.Request) {
	var in metadataParams
	if !readJSON(w, r, &in) {
		return
	}
	m, err := in.metadata()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeUser(w, r)(a.ops.UpdateMetadata(r.Context(), r.PathValue("id"), m, r.Method == http.MethodPatch))
}

// POST /users/{id}/ban, /unban, /lock, /unlock: the user as it is now. A
// ban ends every session of the user at once.
func (a *API) setUserFlag(flag string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !readJSON(w, r, &struct{}{}) {
			return
		}
		id := r.PathValue("id")
		switch flag {
		case "ban", "unban":
			a.writeUser(w, r)(a.ops.SetBanned(r.Context(), id, flag == "ban"))
		default:
			a.writeUser(w, r)(a.ops.SetLocked(r.Context(), id, flag == "lock"))
		}
	}
}

// writeUser answers an operation's user, or its error.
func (a *API) writeUser(w http.ResponseWriter, r *http.Request) func(ops.UserAccounts, error) {
	return func(u ops.UserAccounts, err error) {
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, User(u.User, u.Accounts))
	}
}
