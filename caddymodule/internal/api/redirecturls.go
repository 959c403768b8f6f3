package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
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
	p, err := readPage(r, redirectURLsLimit)
	if err != nil {
		writeError(w, http.StatusBadRequest, "form_param_invalid", err.Error())
		return
	}
	list, total, err := a.Store.RedirectURLs(r.Context(), store.RedirectURLQuery{Limit: p.limit, Offset: p.offset})
	if err != nil {
		a.internal(w, "listing redirect URLs", err)
		return
	}
	items := make([]map[string]any, 0, len(list))
	for _, ru := range list {
		items = append(items, RedirectURL(ru))
	}
	writeList(w, p, items, total)
}

// POST /redirect_urls {"url": "myapp://oauth-callback"}: invalid URLs are
// refused with the reason; an existing URL answers its record.
func (a *API) createRedirectURL(w http.ResponseWriter, r *http.Request) {
	var in struct {
		URL string `json:"url"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_body", "The body is not valid JSON.")
			return
		}
	} else {
		in.URL = r.PostFormValue("url")
	}
	if _, err := redirect.ParseNativeRedirect(in.URL); err != nil {
		writeError(w, http.StatusUnprocessableEntity, "form_param_format_invalid", err.Error())
		return
	}
	ru, err := a.Store.CreateRedirectURL(r.Context(), in.URL)
	if err != nil && !errors.Is(err, store.ErrExists) {
		a.internal(w, "creating redirect URL", err)
		return
	}
	a.Logger.Info("api: redirect URL added", zap.String("redirect_url_id", ru.ID))
	writeJSON(w, http.StatusOK, RedirectURL(ru))
}

// GET /redirect_urls/{id}
func (a *API) getRedirectURL(w http.ResponseWriter, r *http.Request, id string) {
	ru, err := a.Store.RedirectURL(r.Context(), id)
	if a.notFound(w, err, "redirect URL") {
		return
	}
	writeJSON(w, http.StatusOK, RedirectURL(ru))
}

// DELETE /redirect_urls/{id}
func (a *API) deleteRedirectURL(w http.ResponseWriter, r *http.Request, id string) {
	if a.notFound(w, a.Store.DeleteRedirectURL(r.Context(), id), "redirect URL") {
		return
	}
	a.Logger.Info("api: redirect URL deleted", zap.String("redirect_url_id", id))
	writeJSON(w, http.StatusOK, map[string]any{"object": "redirect_url", "id": id, "deleted": true})
}
