package ops_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/socialgate/socialgate/caddymodule/internal/audit"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
)

// The provider tokens an operation hands out, and the native redirect URLs.

func TestProviderTokens_AuditsEachTokenHandedOutToTheActor(t *testing.T) {
	f := newFixture(t)
	ctx := ops.WithActor(context.Background(), ops.Actor{ID: "api_key:abc", ClientIP: "198.51.100.7"})
	for _, tc := range []struct {
		name, user, provider string
		page                 ops.Page
		want                 []string // accounts handed out, in order
		total                int
		err                  func(error) bool
	}{
		{"both accounts", f.ada, "github", ops.Page{Limit: 10}, []string{f.adaWork.ID, f.adaHome.ID}, 2, nil},
		{"a page", f.ada, "github", ops.Page{Limit: 1, Offset: 1}, []string{f.adaHome.ID}, 2, nil},
		{"none at that provider", f.grace, "github", ops.Page{Limit: 10}, nil, 0, nil},
		{"a provider not configured", f.ada, "gitlab", ops.Page{Limit: 10}, nil, 0, func(err error) bool {
			nf, ok := errors.AsType[*ops.NotFoundError](err)
			return ok && nf.Kind == ops.KindProvider && nf.ID == "gitlab"
		}},
		{"unknown user", "user_nobody", "github", ops.Page{Limit: 10}, nil, 0, func(err error) bool { return errors.Is(err, ops.ErrNotFound) }},
		{"expired, no refresh", f.grace, "corp", ops.Page{Limit: 10}, nil, 0, func(err error) bool {
			ae, ok := errors.AsType[*ops.AccountError](err)
			return ok && ae.AccountID == f.gr.ID && ae.Provider == "corp" &&
				(errors.Is(err, ops.ErrNeedsReauthorization) || errors.Is(err, ops.ErrProviderUnavailable))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.audit.TakeAll()
			got, total, err := f.svc.ProviderTokens(ctx, tc.user, tc.provider, tc.page)
			if tc.err != nil {
				if !tc.err(err) || got != nil || f.audit.Len() != 0 {
					t.Fatalf("err %v, %d handed out, %d audited", err, len(got), f.audit.Len())
				}
				return
			}
			var ids []string
			for _, a := range got {
				ids = append(ids, a.ID)
				if a.Tokens.AccessToken == "" {
					t.Errorf("account %s without its token", a.ID)
				}
			}
			if err != nil || !slices.Equal(ids, tc.want) || total != tc.total {
				t.Fatalf("ProviderTokens = %v of %d, %v; want %v of %d", ids, total, err, tc.want, tc.total)
			}
			entries := f.audit.TakeAll()
			if len(entries) != len(tc.want) {
				t.Fatalf("%d audit entries, want %d", len(entries), len(tc.want))
			}
			for i, e := range entries {
				m := e.ContextMap()
				if e.Message != audit.ActionReadToken || m["actor"] != "api_key:abc" || m["client_ip"] != "198.51.100.7" ||
					m["user_id"] != tc.user || m["external_account_id"] != tc.want[i] {
					t.Errorf("entry %d: %s %v", i, e.Message, m)
				}
			}
		})
	}
	// The store keeps them for the user's page, newest first.
	kept, err := f.svc.UserAudit(ctx, f.ada, 10)
	if err != nil || len(kept) != 3 || kept[0].Action != audit.ActionReadToken || kept[0].Actor != "api_key:abc" ||
		kept[0].ClientIP != "198.51.100.7" || kept[0].ExternalAccountID != f.adaHome.ID || kept[2].ExternalAccountID != f.adaWork.ID {
		t.Errorf("ada's kept audit entries: %+v, %v", kept, err)
	}
	if _, _, err := ops.New(ops.Options{Store: f.st}).ProviderTokens(ctx, f.ada, "github", ops.Page{Limit: 1}); err == nil {
		t.Error("a service without a token engine handed a token out")
	}
}

func TestRedirectURLs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	ru, err := f.svc.CreateRedirectURL(ctx, "myapp://oauth-callback")
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.svc.CreateRedirectURL(ctx, "myapp://oauth-callback")
	if err != nil || again.ID != ru.ID {
		t.Errorf("creating it again: %v, %v; want the record", again, err)
	}
	for _, bad := range []string{"", "javascript:alert(1)", "https://app.example.com/cb#frag", "not a url"} {
		_, err := f.svc.CreateRedirectURL(ctx, bad)
		if pe, ok := errors.AsType[*ops.ParamError](err); !ok || pe.Kind != ops.ParamFormat || pe.Param != "url" {
			t.Errorf("CreateRedirectURL(%q) = %v, want a format error", bad, err)
		}
	}
	list, total, err := f.svc.RedirectURLs(ctx, ops.Page{Limit: 10})
	if err != nil || total != 1 || list[0].URL != "myapp://oauth-callback" {
		t.Errorf("RedirectURLs = %v of %d, %v", list, total, err)
	}
	if got, err := f.svc.RedirectURL(ctx, ru.ID); err != nil || got.URL != ru.URL {
		t.Errorf("RedirectURL = %v, %v", got, err)
	}
	if err := f.svc.DeleteRedirectURL(ctx, ru.ID); err != nil {
		t.Fatal(err)
	}
	notFound(t, f.svc.DeleteRedirectURL(ctx, ru.ID), ops.KindRedirectURL)
	_, err = f.svc.RedirectURL(ctx, ru.ID)
	notFound(t, err, ops.KindRedirectURL)
}
