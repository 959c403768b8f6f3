package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// cookieSecrets expands the configured cookie keys ({env.*}, {file.*}); with
// none configured, the store's are used (generated, or derived from the
// PostgreSQL secrets, newest first).
func cookieSecrets(repl *caddy.Replacer, keys []string, generated [][]byte) ([][]byte, error) {
	if len(keys) == 0 {
		return generated, nil
	}
	out := make([][]byte, 0, len(keys))
	for i, k := range keys {
		v := strings.TrimSpace(repl.ReplaceKnown(k, ""))
		if len(v) < 32 {
			return nil, fmt.Errorf("cookie_keys: key %d is %d characters after expansion; use at least 32 random characters", i+1, len(v))
		}
		out = append(out, []byte(v))
	}
	return out, nil
}

// expandAll expands {env.*} and {file.*} in each value; an empty result is
// an error naming the option.
func expandAll(repl *caddy.Replacer, option string, values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for i, v := range values {
		x := strings.TrimSpace(repl.ReplaceKnown(v, ""))
		if x == "" {
			return nil, fmt.Errorf("%s %d is empty after expansion", option, i+1)
		}
		out = append(out, x)
	}
	return out, nil
}

// seedRedirectURLs validates the configured native redirect URLs and records
// the missing ones in the store.
func seedRedirectURLs(st store.Store, urls []string) error {
	for _, u := range urls {
		if _, err := redirect.ParseNativeRedirect(u); err != nil {
			return fmt.Errorf("redirect_urls: %w", err)
		}
		if _, err := st.CreateRedirectURL(context.Background(), u); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("redirect_urls: %w", err)
		}
	}
	return nil
}

// checkPrefix accepts a path like /_auth: one or more segments, no trailing slash.
func checkPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.ContainsAny(p, "?#%\\ \t\r\n") || strings.Contains(p, "//") {
		return fmt.Errorf("prefix %q must be a path like /_auth, without a trailing slash", p)
	}
	return nil
}
