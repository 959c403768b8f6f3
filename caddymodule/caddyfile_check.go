package caddymodule

// Checks made while the Caddyfile is parsed, so that a mistake fails `caddy
// adapt`, `caddy validate` and `caddy run` with the file and line of the
// option at fault. Each applies the rule that the server applies again at
// load (for JSON configs), written once in internal/config; what only the
// server knows (what {env.*} and {file.*} expand to, files, the store) is
// left to Provision.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/confcheck"
	"github.com/socialgate/socialgate/caddymodule/internal/config"
)

// The options of each block, for the error that names an unknown one (a
// test holds them to the syntax in the parsers' doc comments).
var (
	appOptions = []string{"storage", "prefix", "dev_provider", "provider", "cookie_keys", "session_lifetime",
		"id_token_session_lifetime", "session_cache", "session_idle_timeout", "reauthenticate_after", "flow_timeout",
		"token_refresh_skew", "api_key", "identity_issuer", "identity_audience", "identity_key_delay", "return_urls",
		"allow_emails", "allow_groups", "admins", "redirect_urls", "rate_limit", "rate_limit_ipv6_prefix", "app_name", "logo_url",
		"accent", "templates", "messages", "locale", "webhook", "cookie_domain", "return_hosts", "forward_auth"}
	forwardAuthOptions  = []string{"listen", "policy"}
	verifyListenOptions = []string{"trusted"}
	postgresOptions     = []string{"dsn", "secret", "max_conns", "connect_timeout"}
	devProviderOptions  = []string{"listen", "access_token_lifetime", "link_by_email", "allow_remote", "provider"}
	devIdentityOptions  = []string{"display_name", "sign_in", "link_by_email", "grants"}
	providerOptions     = []string{"client_id", "client_secret", "display_name", "issuer", "authorize_url", "token_url",
		"userinfo_url", "revoke_url", "emails_url", "jwks_url", "tenant", "base_url", "team_id", "key_id", "private_key",
		"bundle_ids", "native_client_ids", "scopes", "fields", "groups_from", "auth_param", "pkce", "sign_in",
		"sign_out_at_provider", "link_by_email"}
	webhookOptions = []string{"secret", "events", "retries", "retain", "timeout"}
	handlerOptions = []string{"public", "require", "forward_token", "allow_emails", "allow_groups", "identity_audience"}

	// These options may be written more than once: their values add up.
	// Any other written twice is a mistake (the second would silently win);
	// rate_limit is set per class, a later line winning.
	appRepeatable      = []string{"provider", "webhook", "api_key", "allow_emails", "allow_groups", "admins", "redirect_urls", "rate_limit", "return_hosts"}
	providerRepeatable = []string{"scopes", "native_client_ids", "groups_from", "bundle_ids", "auth_param"}
	handlerRepeatable  = []string{"require", "forward_token", "allow_emails", "allow_groups"}
)

// unknownOption is the error for the option at d's cursor, which the block
// does not have: what it may have meant, else the block's options.
func unknownOption(d *caddyfile.Dispenser, known []string, format string, args ...any) error {
	return d.Errf("%s (%s)", fmt.Sprintf(format, args...), confcheck.Hint(d.Val(), known))
}

// noArgs refuses arguments after a flag option.
func noArgs(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// errAt places err at tok's file and line, as d.Errf does at the cursor.
func errAt(tok caddyfile.Token, err error) error {
	d := caddyfile.NewDispenser([]caddyfile.Token{tok})
	d.Next()
	return d.WrapErr(err)
}

// written remembers where each option of a block was first written, so
// that a check made later points at the option's line; an option that is
// not repeatable is refused the second time.
type written struct {
	block      caddyfile.Token // the block's own first token
	current    caddyfile.Token // the option being parsed
	at         map[string]caddyfile.Token
	repeatable []string
}

// newWritten starts the record of the block whose first token is at d's
// cursor.
func newWritten(d *caddyfile.Dispenser, repeatable []string) *written {
	return &written{block: d.Token(), at: map[string]caddyfile.Token{}, repeatable: repeatable}
}

// note records the option at d's cursor.
func (w *written) note(d *caddyfile.Dispenser) error {
	w.current = d.Token()
	option := d.Val()
	if first, ok := w.at[option]; ok {
		if !slices.Contains(w.repeatable, option) {
			return d.Errf("%s is already set at line %d: write it once", option, first.Line)
		}
		return nil
	}
	w.at[option] = d.Token()
	return nil
}

// place puts err, about the block, at the line of the option it names
// first after its "provider x:" label (the provider package's errors start
// with the option they are about) when that option is written, else at the
// block's line: "team_id is required" is about the block.
func (w *written) place(err error, options []string) error {
	_, msg, _ := strings.Cut(err.Error(), ": ")
	named, first := "", len(msg)
	for _, opt := range options {
		if i := wordIndex(msg, opt); i >= 0 && i < first {
			named, first = opt, i
		}
	}
	if tok, ok := w.at[named]; ok {
		return errAt(tok, err)
	}
	return errAt(w.block, err)
}

// wordIndex is the index of word in s as a whole word (not part of
// auth_params or token_url_x), or -1.
func wordIndex(s, word string) int {
	isWord := func(b byte) bool {
		return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
	}
	for from := 0; ; {
		i := strings.Index(s[from:], word)
		if i < 0 {
			return -1
		}
		i += from
		end := i + len(word)
		if (i == 0 || !isWord(s[i-1])) && (end == len(s) || !isWord(s[end])) {
			return i
		}
		from = i + 1
	}
}

// checkProvider checks a parsed provider block as the server will at load
// (but the values of placeholders), at the line of the option at fault.
func (w *written) checkProvider(pc config.ProviderConfig) error {
	if err := pc.Check(); err != nil {
		return w.place(err, providerOptions)
	}
	return nil
}

// appCheck checks the socialgate global option while it is parsed.
type appCheck struct {
	*written
	providers  []caddyfile.Token // where each provider block starts
	groups     []groupsLine
	groupsSeen int // how many allow_groups rules groups holds
}

// groupsLine is one allow_groups line: its rules name providers, which are
// known only at the end of the block.
type groupsLine struct {
	at    caddyfile.Token
	rules []string
}

func newAppCheck(d *caddyfile.Dispenser) *appCheck {
	return &appCheck{written: newWritten(d, appRepeatable)}
}

// option checks the option just parsed into a (config.Options.CheckOption);
// the allow_groups rules and the providers wait for the end of the block.
func (c *appCheck) option(a *App) error {
	switch c.current.Text {
	case "allow_groups":
		c.groups = append(c.groups, groupsLine{c.current, a.AllowGroups[c.groupsSeen:]})
		c.groupsSeen = len(a.AllowGroups)
	case "provider":
		c.providers = append(c.providers, c.current)
	}
	if err := a.CheckOption(c.current.Text); err != nil {
		return errAt(c.current, err)
	}
	return nil
}

// finish checks what depends on the whole block: the providers' names.
func (c *appCheck) finish(a *App) error {
	names := a.ProviderNames()
	if len(names) == 0 {
		return errAt(c.block, config.ErrNoProvider)
	}
	if i, err := config.DuplicateName(names); err != nil {
		// The dev provider's names come first, then the provider blocks'.
		tok := c.at["dev_provider"]
		if j := i - (len(names) - len(a.Providers)); j >= 0 {
			tok = c.providers[j]
		}
		return errAt(tok, err)
	}
	for _, g := range c.groups {
		if _, err := access.Parse(nil, g.rules, names); err != nil {
			return errAt(g.at, err)
		}
	}
	return nil
}

// handlerCheck checks a socialgate directive while it is parsed, against
// the providers of the socialgate global option.
type handlerCheck struct {
	*written
	providers []string
}

// newHandlerCheck reads the provider names from the socialgate global
// option: httpcaddyfile parses the global options before the sites.
func newHandlerCheck(h httpcaddyfile.Helper) (*handlerCheck, error) {
	opt, ok := h.Option("socialgate").(httpcaddyfile.App)
	if !ok {
		return nil, h.Err("the socialgate directive needs the socialgate global option, where the providers are: " +
			"add { socialgate { dev_provider } } at the top of the Caddyfile, or a provider block")
	}
	app := new(App)
	if err := json.Unmarshal(opt.Value, app); err != nil {
		return nil, h.Errf("reading the socialgate global option: %v", err)
	}
	return &handlerCheck{written: newWritten(h.Dispenser, handlerRepeatable), providers: app.ProviderNames()}, nil
}

// option checks the handler with the option just parsed; the options
// before it passed already.
func (c *handlerCheck) option(handler *Handler) error {
	if err := handler.Check(c.providers); err != nil {
		return errAt(c.current, err)
	}
	return nil
}
