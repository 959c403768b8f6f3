package api

import (
	"net/http"
	"sync"
)

// GET /providers: each configured provider and whether it answers now
// (checked concurrently, each bounded by the provider client's timeout).
func (a *API) listProviders(w http.ResponseWriter, r *http.Request) {
	items := make([]map[string]any, len(a.Providers))
	var wg sync.WaitGroup
	for i, p := range a.Providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			item := map[string]any{"object": "provider", "id": ProviderID(p.Name()), "name": p.Name(),
				"display_name": p.DisplayName(), "sign_in": p.SignIn(), "reachable": true}
			if err := p.Reachable(r.Context()); err != nil {
				item["reachable"], item["error"] = false, err.Error()
			}
			items[i] = item
		}()
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, items)
}
