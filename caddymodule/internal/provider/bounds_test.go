package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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

// A token answer with a field the gateway keeps past MaxToken is refused,
// at sign-in and at refresh, naming the field; one at the bound is taken.
func TestTokenAnswer_AFieldPastMaxTokenRefusesIt(t *testing.T) {
	for _, field := range []string{"access_token", "refresh_token", "id_token", "token_type", "scope"} {
		for _, size := range []int{MaxToken, MaxToken + 1} {
			f, p := newPreset(t, caseOf(t, "spotify"))
			answer := map[string]any{"access_token": "at", "token_type": "Bearer", "refresh_token": "rt", "expires_in": 3600}
			answer[field] = strings.Repeat("x", size)
			f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) {
				b, _ := json.Marshal(answer)
				f.writeJSON(w, http.StatusOK, b)
			}
			_, signInErr := signIn(p, Callback{})
			_, refreshErr := p.Refresh(context.Background(), "", liveRefresh)
			for what, err := range map[string]error{"sign-in": signInErr, "refresh": refreshErr} {
				var tl *TooLargeError
				refused := errors.As(err, &tl) && tl.Field == field && errors.Is(err, ErrRejected)
				if (size > MaxToken) != refused || (!refused && err != nil) {
					t.Errorf("%s with a %d-byte %s: %v", what, size, field, err)
				}
			}
		}
	}
}

// A profile's name and username are cut to their bounds at a character
// boundary, a picture URL past its bound is dropped, and the granted
// scopes keep their first entries within scopesBound.
func TestProfile_DisplayFieldsAndScopesStayWithinTheirBounds(t *testing.T) {
	f, p := newPreset(t, caseOf(t, "github"))
	user := map[string]any{"id": 42, "login": "o" + strings.Repeat("ö", MaxUsername), "name": "Ada " + strings.Repeat("é", MaxName),
		"avatar_url": "https://avatars.example/" + strings.Repeat("a", MaxImageURL)}
	f.handlers["/userinfo"] = func(w http.ResponseWriter, r *http.Request) {
		b, _ := json.Marshal(user)
		f.writeJSON(w, http.StatusOK, b)
	}
	var scopes []string
	for i := range 1000 {
		scopes = append(scopes, fmt.Sprintf("scope-%04d", i))
	}
	f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) {
		f.writeJSON(w, http.StatusOK, []byte(`{"access_token":"at","token_type":"bearer","scope":"`+strings.Join(scopes, ",")+`"}`))
	}
	res, err := signIn(p, Callback{})
	if err != nil {
		t.Fatal(err)
	}
	prof := res.Profile
	for field, tc := range map[string]struct {
		got, prefix string
		max         int
	}{"name": {prof.Name, "Ada éé", MaxName}, "username": {prof.Username, "oöö", MaxUsername}} {
		if !strings.HasPrefix(tc.got, tc.prefix) || len(tc.got) > tc.max || len(tc.got) < tc.max-1 || !utf8.ValidString(tc.got) {
			t.Errorf("%s: %d bytes (%.20q…), want it cut to %d bytes at a character boundary", field, len(tc.got), tc.got, tc.max)
		}
	}
	if prof.ImageURL != "" {
		t.Errorf("a %d-byte picture URL was kept", len(prof.ImageURL))
	}
	if len(res.Scopes) != scopesBound.items || res.Scopes[0] != "scope-0000" {
		t.Errorf("%d scopes kept, from %q: want the first %d", len(res.Scopes), res.Scopes[0], scopesBound.items)
	}
}

func TestListBound_KeepsTheFirstEntriesWithinItsBounds(t *testing.T) {
	b := listBound{items: 3, each: 4, size: 7}
	var got []string
	for _, s := range []string{"", "abcde", "ab", "abc", "abcd", "a", "b"} {
		got = b.add(got, s)
	}
	// "abcd" would take the size to 9; "a" fits (6), "b" is one too many.
	if want := []string{"ab", "abc", "a"}; !slices.Equal(got, want) {
		t.Errorf("kept %q, want %q", got, want)
	}
}

// An identity past its bound refuses the sign-in, naming the field: cut
// short, it could name someone else. One at its bound is taken; a NUL byte,
// which no store keeps, refuses it too.
func TestProfile_AnIdentityPastItsBoundRefusesTheSignIn(t *testing.T) {
	at := func(n int) string { return strings.Repeat("x", n) }
	email := func(n int) string { return at(n-len("@example.com")) + "@example.com" }
	for _, tc := range []struct {
		name, id, email string
		tooLarge        string // the field refused, "" when taken
		rejected        bool
	}{
		{"subject at its bound", at(MaxSubject), "a@example.com", "", false},
		{"subject past its bound", at(MaxSubject + 1), "a@example.com", "subject", true},
		{"email at its bound", "1", email(MaxEmail), "", false},
		{"email of 70 KB", "1", email(70_000), "email address", true},
		{"subject with a NUL", "a\x00b", "a@example.com", "", true},
		{"email with a NUL", "1", "a\x00b@example.com", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := newPreset(t, caseOf(t, "spotify"))
			f.handlers["/userinfo"] = func(w http.ResponseWriter, r *http.Request) {
				b, _ := json.Marshal(map[string]any{"id": tc.id, "email": tc.email})
				f.writeJSON(w, http.StatusOK, b)
			}
			res, err := signIn(p, Callback{})
			var tl *TooLargeError
			if errors.Is(err, ErrRejected) != tc.rejected || (tc.tooLarge != "") != errors.As(err, &tl) || (tl != nil && tl.Field != tc.tooLarge) {
				t.Fatalf("err = %v, want rejected %v, too large %q", err, tc.rejected, tc.tooLarge)
			}
			if err == nil && (res.Profile.Subject != tc.id || res.Profile.Email != tc.email) {
				t.Errorf("profile %q %q, want the identity whole", res.Profile.Subject, res.Profile.Email)
			}
		})
	}
}

// A token endpoint's refusal is told from an outage: a 4xx, with an OAuth
// error code or without one (an HTML 401 from a proxy in front of the
// provider), or a 200 carrying an error, is *RefusedError naming the code
// or the status; a 5xx, 408, 429 or a temporarily_unavailable is
// ErrUnavailable; a dead grant is ErrInvalidGrant. No error repeats the
// answer's description, which may echo what was sent.
func TestRefresh_ARefusalIsNotAnOutage(t *testing.T) {
	for _, tc := range []struct {
		name        string
		status      int
		ctype, body string
		refused     string // RefusedError.Reason(), "" when not refused
		want        error
	}{
		{"401 invalid_client", 401, "application/json", `{"error":"invalid_client","error_description":"` + liveRefresh + `"}`, "invalid_client", ErrRefused},
		{"400 unauthorized_client", 400, "application/json", `{"error":"unauthorized_client"}`, "unauthorized_client", ErrRefused},
		{"401 as an HTML page", 401, "text/html", `<html><body>` + liveRefresh + `</body></html>`, "HTTP 401", ErrRefused},
		{"403 with no body", 403, "", ``, "HTTP 403", ErrRefused},
		{"200 with an error", 200, "application/json", `{"error":"invalid_request"}`, "invalid_request", ErrRefused},
		{"400 invalid_grant", 400, "application/json", `{"error":"invalid_grant"}`, "", ErrInvalidGrant},
		{"500", 500, "text/plain", `oops ` + liveRefresh, "", ErrUnavailable},
		{"503 temporarily_unavailable", 503, "application/json", `{"error":"temporarily_unavailable"}`, "", ErrUnavailable},
		{"400 temporarily_unavailable", 400, "application/json", `{"error":"temporarily_unavailable"}`, "", ErrUnavailable},
		{"429", 429, "application/json", `{"error":"rate_limited"}`, "", ErrUnavailable},
		{"408", 408, "", ``, "", ErrUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, p := newPreset(t, caseOf(t, "x"))
			f.handlers["/token"] = func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			}
			_, err := p.Refresh(context.Background(), "", liveRefresh)
			var refused *RefusedError
			if !errors.Is(err, tc.want) || errors.As(err, &refused) != (tc.refused != "") {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if refused != nil && (refused.Reason() != tc.refused || !errors.Is(err, ErrRejected) || errors.Is(err, ErrUnavailable)) {
				t.Errorf("refused %q (%v), want %q, rejected and not unavailable", refused.Reason(), err, tc.refused)
			}
			if strings.Contains(err.Error(), liveRefresh) || strings.Contains(err.Error(), "html") {
				t.Errorf("error %q repeats the answer", err)
			}
		})
	}
}
