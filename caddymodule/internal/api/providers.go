package api

import "net/http"

// GET /providers: each configured provider and whether it answers now
// (checked concurrently, each bounded by the provider client's timeout).
func (a *API) listProviders(w http.ResponseWriter, r *http.Request) {
	items := []map[string]any{}
	for _, p := range a.ops.Providers(r.Context()) {
		item := map[string]any{"object": "provider", "id": ProviderID(p.Name), "name": p.Name,
			"display_name": p.DisplayName, "sign_in": p.SignIn, "reachable": p.Unreachable == nil}
		if p.Unreachable != nil {
			item["error"] = p.Unreachable.Error()
		}
		items = append(items, item)
	}
	writeJSON(w, http.StatusOK, items)
}
