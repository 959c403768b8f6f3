package config

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/keyring"
	"github.com/socialgate/socialgate/caddymodule/internal/redirect"
	"github.com/socialgate/socialgate/caddymodule/internal/store"
)

// Expand replaces the {env.*} and {file.*} placeholders of a configured
// value, leaving unknown ones empty: in the Caddy layer, Caddy's replacer.
type Expand func(raw string) string

// cookieSecrets expands the configured cookie keys ({env.*}, {file.*}); with
// none configured, the store's are used (generated, or derived from the
// PostgreSQL secrets, newest first).
func cookieSecrets(expand Expand, keys []string, generated [][]byte) ([][]byte, error) {
	if len(keys) == 0 {
		return generated, nil
	}
	out := make([][]byte, 0, len(keys))
	for i, k := range keys {
		v, err := expandValue(expand, fmt.Sprintf("cookie_keys: key %d", i+1), k)
		if err == nil {
			err = checkSecretLength(fmt.Sprintf("cookie_keys: key %d", i+1), v)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, []byte(v))
	}
	return out, nil
}

// apiKeys expands the configured API keys, each long enough to resist
// guessing.
func (o *Options) apiKeys(expand Expand) ([]string, error) {
	keys, err := expandAll(expand, "api_key", o.APIKeys)
	if err != nil {
		return nil, err
	}
	for i, k := range keys {
		if err := checkSecretLength(fmt.Sprintf("api_key: key %d", i+1), k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

// checkSecretLength refuses a secret shorter than keyring.MinSecretLength;
// the error names it by what (cookie_keys: key 1), never by its value.
func checkSecretLength(what, secret string) error {
	if n := len(secret); n < keyring.MinSecretLength {
		return fmt.Errorf("%s is %d characters; use at least %d random characters, like the output of openssl rand -base64 32",
			what, n, keyring.MinSecretLength)
	}
	return nil
}

// checkWrittenSecrets checks the length of the secrets written out in the
// config; those with placeholders are checked once the server expands them.
func checkWrittenSecrets(what string, secrets []string) error {
	for i, s := range secrets {
		if !hasPlaceholder(s) {
			if err := checkSecretLength(fmt.Sprintf("%s %d", what, i+1), s); err != nil {
				return err
			}
		}
	}
	return nil
}

// expandAll expands {env.*} and {file.*} in each value; an empty result is
// an error naming the option.
func expandAll(expand Expand, option string, values []string) ([]string, error) {
	out := make([]string, 0, len(values))
	for i, v := range values {
		x, err := expandValue(expand, fmt.Sprintf("%s %d", option, i+1), v)
		if err != nil {
			return nil, err
		}
		if x == "" {
			return nil, fmt.Errorf("%s %d is empty", option, i+1)
		}
		out = append(out, x)
	}
	return out, nil
}

// placeholder matches the {env.*} and {file.*} placeholders of a value.
var placeholder = regexp.MustCompile(`\{(env|file)\.[^{}]+\}`)

// expandValue expands {env.*} and {file.*} in a configured value, trimmed.
// A value whose placeholders expand to nothing is an error that names them
// (never the value, which may hold a secret): a variable not set in the
// server's environment, a missing or empty file.
func expandValue(expand Expand, what, raw string) (string, error) {
	v := strings.TrimSpace(expand(raw))
	if names := placeholder.FindAllString(raw, -1); v == "" && len(names) > 0 {
		return "", fmt.Errorf("%s is empty: %s expands to nothing (is the environment variable set for the server, or the file there and readable?)",
			what, strings.Join(names, ""))
	}
	return v, nil
}

// hasPlaceholder reports whether a configured value is expanded at load, so
// that only the server can check what it becomes.
func hasPlaceholder(raw string) bool { return placeholder.MatchString(raw) }

// seedRedirectURLs validates the configured native redirect URLs and records
// the missing ones in the store: none unless all are valid.
func seedRedirectURLs(st store.Store, urls []string) error {
	if err := checkRedirectURLs(urls); err != nil {
		return err
	}
	for _, u := range urls {
		if _, err := st.CreateRedirectURL(context.Background(), u); err != nil && !errors.Is(err, store.ErrExists) {
			return fmt.Errorf("redirect_urls: %w", err)
		}
	}
	return nil
}

// checkRedirectURLs refuses a native redirect URL that is not one, or that
// is listed twice (likely a copy meant to be another).
func checkRedirectURLs(urls []string) error {
	seen := map[string]bool{}
	for _, u := range urls {
		if _, err := redirect.ParseNativeRedirect(u); err != nil {
			return fmt.Errorf("redirect_urls: %w", err)
		}
		if seen[u] {
			return fmt.Errorf("redirect_urls: %q is listed twice", u)
		}
		seen[u] = true
	}
	return nil
}
