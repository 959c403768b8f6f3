package provider

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// huge is a JSON object just over MaxBody.
var huge = `{"access_token":"x","pad":"` + strings.Repeat("a", MaxBody) + `"}`

func TestProviderGarbage_IsUnavailableNotAHang(t *testing.T) {
	html := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(status)
			_, _ = w.Write([]byte("<html><body>Service Unavailable</body></html>"))
		}
	}
	json := func(status int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write([]byte(body))
		}
	}
	stall := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"access_token":`))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	tests := []struct {
		name, kind, path string
		handler          http.HandlerFunc
		want             error
	}{
		{"token body over 1 MiB", "github", "/token", json(http.StatusOK, huge), ErrUnavailable},
		{"token answer in HTML", "github", "/token", html(http.StatusOK), ErrUnavailable},
		{"token endpoint down", "github", "/token", html(http.StatusBadGateway), ErrUnavailable},
		{"token endpoint server_error", "discord", "/token", json(http.StatusInternalServerError, `{"error":"server_error"}`), ErrUnavailable},
		{"token answer without access_token", "discord", "/token", json(http.StatusOK, `{"token_type":"Bearer"}`), ErrUnavailable},
		{"token answer not an object", "discord", "/token", json(http.StatusOK, `["access_token"]`), ErrUnavailable},
		{"token endpoint stalls mid-body", "discord", "/token", stall, ErrUnavailable},
		{"userinfo body over 1 MiB", "spotify", "/userinfo", json(http.StatusOK, huge), ErrUnavailable},
		{"userinfo in HTML", "spotify", "/userinfo", html(http.StatusOK), ErrUnavailable},
		{"userinfo not an object", "spotify", "/userinfo", json(http.StatusOK, `"me"`), ErrUnavailable},
		{"userinfo without an id", "spotify", "/userinfo", json(http.StatusOK, `{"display_name":"x"}`), ErrRejected},
		{"emails over 1 MiB", "github", "/emails", json(http.StatusOK, `[`+strings.Repeat(`{},`, MaxBody/3)+`{}]`), ErrUnavailable},
		{"OIDC userinfo in HTML", "gitlab", "/userinfo", html(http.StatusOK), ErrUnavailable},
		{"discovery over 1 MiB", "gitlab", "/.well-known/openid-configuration", json(http.StatusOK, huge), ErrUnavailable},
		{"bad code", "discord", "/token", json(http.StatusBadRequest, `{"error":"invalid_grant"}`), ErrRejected},
		{"bad code refused with 200", "slack", "/token", json(http.StatusOK, readSample(t, "slack", "token_error.json")), ErrRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, p := newPreset(t, caseOf(t, tt.kind))
			p.client.Timeout = 300 * time.Millisecond
			f.handlers[tt.path] = tt.handler
			start := time.Now()
			_, err := signIn(p, Callback{})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if time.Since(start) > 3*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
			if strings.Contains(err.Error(), goodCode) || strings.Contains(err.Error(), testClientSecret) {
				t.Errorf("error %q leaks the code or the secret", err)
			}
		})
	}
}

func TestBodyLimit_HoldsWithAnyHTTPClient(t *testing.T) {
	f := newFake(t, "spotify")
	f.handlers["/userinfo"] = func(w http.ResponseWriter, r *http.Request) { f.writeJSON(w, http.StatusOK, []byte(huge)) }
	cfg := oauth2URLs(f)
	cfg.Name, cfg.Kind, cfg.ClientID, cfg.ClientSecret = "s", "spotify", testClientID, testClientSecret
	cfg.HTTPClient = &http.Client{} // no limit of its own, no timeout
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signIn(p, Callback{}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
}

func TestRefreshAndRevoke_ErrorsCarryNoToken(t *testing.T) {
	f, p := newPreset(t, caseOf(t, "x"))
	f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }
	f.handlers["/revoke"] = func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) }
	ctx := context.Background()
	_, err := p.Refresh(ctx, "", liveRefresh)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidGrant) {
		t.Errorf("refresh against a down server: %v, want ErrUnavailable only", err)
	}
	rerr := p.Revoke(ctx, "", "at-live", liveRefresh)
	if !errors.Is(rerr, ErrUnavailable) {
		t.Errorf("revoke against a down server: %v", rerr)
	}
	for _, e := range []error{err, rerr} {
		if e != nil && (strings.Contains(e.Error(), liveRefresh) || strings.Contains(e.Error(), "at-live")) {
			t.Errorf("error %q contains a token", e)
		}
	}
	if _, err := p.Refresh(ctx, "", ""); !errors.Is(err, ErrInvalidGrant) {
		t.Errorf("refresh without a refresh token: %v", err)
	}
	// Slack refuses revocation with 200 and "ok": false.
	f, p = newPreset(t, caseOf(t, "slack"))
	f.handlers["/revoke"] = func(w http.ResponseWriter, r *http.Request) {
		f.writeJSON(w, http.StatusOK, []byte(`{"ok":false,"error":"invalid_auth"}`))
	}
	if err := p.Revoke(ctx, "", "at-live", ""); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "invalid_auth") {
		t.Errorf("slack refusal: %v", err)
	}
}
