package api

import (
	"mime"
	"net/http"

	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// RedirectURL is a redirect_url object.
func RedirectURL(ru *store.RedirectURL) map[string]any {
	return map[string]any{
		"object":     "redirect_url",
		"id":         ru.ID,
		"url":        ru.URL,
		"created_at": ru.CreatedAt.UnixMilli(),
		"updated_at": ru.UpdatedAt.UnixMilli(),
	}
}

// redirectURLsLimit is the page size of GET /redirect_urls without limit:
// the largest, so that a client written when the list was not paged still
// gets every URL of any deployment that has fewer.
const redirectURLsLimit = 500

// GET /redirect_urls?limit=&offset=&paginated=
func (a *API) listRedirectURLs(w http.ResponseWriter, r *http.Request) {
	p, paginated, err := page(r, redirectURLsLimit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	list, total, err := a.ops.RedirectURLs(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(list))
	for _, ru := range list {
		items = append(items, RedirectURL(ru))
	}
	writeList(w, paginated, items, total)
}

// POST /redirect_urls {"url": "myapp://oauth-callback"}, as JSON or as a
// form: invalid URLs are refused with the reason; an existing URL answers
// its record.
func (a *API) createRedirectURL(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL string `json:"url"`
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		in.URL = r.PostFormValue("url")
	} else if !readJSON(w, r, &in) {
		return
	}
	ru, err := a.ops.CreateRedirectURL(r.Context(), in.URL)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RedirectURL(ru))
}

// GET /redirect_urls/{id}
func (a *API) getRedirectURL(w http.ResponseWriter, r *http.Request) {
	ru, err := a.ops.RedirectURL(r.Context(), r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, RedirectURL(ru))
}

// DELETE /redirect_urls/{id}
func (a *API) deleteRedirectURL(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := a.ops.DeleteRedirectURL(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "redirect_url", "id": id, "deleted": true})
}
