package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/socialgate/socialgate/caddymodule/internal/access"
	"github.com/socialgate/socialgate/caddymodule/internal/assertion"
)

// Route is what a route asks of its requests: the Caddy handler's
// settings, as configured.
type Route struct {
	// Public lets requests through without a session; it excludes the
	// rest.
	Public bool
	// Require lists the linked accounts a request needs.
	Require []Requirement
	// Forward lists the providers whose fresh access token goes upstream;
	// each is also required.
	Forward []Forward
	// AllowEmails and AllowGroups admit only the users they match (see
	// package access), besides the app's own rules.
	AllowEmails, AllowGroups []string
	// Audience is the identity token's aud claim on this route; none: the
	// app's.
	Audience []string
}

// Forward sends a provider's access token upstream in Header (default:
// TokenHeader(Provider)).
type Forward struct {
	Provider, Header string
}

// Policy is a Route checked and compiled for Guard.
type Policy struct {
	public   bool
	require  []Requirement
	forward  []Forward // with their headers
	allow    *access.Rules
	owned    owned // the headers the route sets or reads
	audience *assertion.Audience
}

// Policy checks rt against the configured providers (see CheckRoute) and
// compiles it for Guard.
func (g *Gateway) Policy(rt Route) (*Policy, error) {
	names := g.providerNames()
	if err := CheckRoute(rt, names); err != nil {
		return nil, err
	}
	allow, err := access.Parse(rt.AllowEmails, rt.AllowGroups, names)
	if err != nil {
		return nil, err
	}
	p := &Policy{public: rt.Public, require: rt.Require, allow: allow, audience: assertion.NewAudience(rt.Audience)}
	var headers []string
	for _, f := range rt.Forward {
		f.Header = f.header()
		p.forward = append(p.forward, f)
		headers = append(headers, f.Header)
	}
	p.owned = newOwned(headers...)
	return p, nil
}

// headerName is an HTTP header field name (RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// CheckRoute validates a route against the names of the configured
// providers: every provider it names exists, a public route asks nothing
// else, and no two tokens go in one header. The error names the setting.
func CheckRoute(rt Route, providers []string) error {
	if rt.Public && (len(rt.Require)+len(rt.Forward)+len(rt.AllowEmails)+len(rt.AllowGroups) > 0) {
		return errors.New("socialgate public: a public route lets everyone through; it cannot also require, forward_token, allow_emails or allow_groups")
	}
	for _, r := range rt.Require {
		if err := checkRequirement(r, providers); err != nil {
			return fmt.Errorf("socialgate require %s: %w", r.Provider, err)
		}
	}
	headers := map[string]string{}
	for i, f := range rt.Forward {
		if err := checkRequirement(Requirement{Provider: f.Provider}, providers); err != nil {
			return fmt.Errorf("socialgate forward_token %s: %w", f.Provider, err)
		}
		if slices.ContainsFunc(rt.Forward[:i], func(o Forward) bool { return o.Provider == f.Provider }) {
			return fmt.Errorf("socialgate forward_token %s: the provider's token is already forwarded", f.Provider)
		}
		header := f.header()
		if !headerName.MatchString(header) {
			return fmt.Errorf("socialgate forward_token %s: header %q is not a header name", f.Provider, f.Header)
		}
		if other, ok := headers[header]; ok {
			return fmt.Errorf("socialgate forward_token %s: header %s already carries %s's token", f.Provider, header, other)
		}
		headers[header] = f.Provider
	}
	if _, err := access.Parse(rt.AllowEmails, rt.AllowGroups, providers); err != nil {
		return fmt.Errorf("socialgate %w", err)
	}
	return nil
}

// header is the header that carries the forwarded token.
func (f Forward) header() string {
	if f.Header != "" {
		return http.CanonicalHeaderKey(f.Header)
	}
	return TokenHeader(f.Provider)
}

// CheckPrefix accepts a prefix for the gateway's endpoints: a clean path
// like /_auth, of one or more segments, without a trailing slash.
func CheckPrefix(p string) error {
	if !strings.HasPrefix(p, "/") || p == "/" || path.Clean(p) != p || strings.ContainsAny(p, "?#%\\{} \t\r\n") {
		return fmt.Errorf("prefix %q must be a path like /_auth, without a trailing slash", p)
	}
	return nil
}

// providerNames lists the configured providers' names, in order.
func (g *Gateway) providerNames() []string {
	names := make([]string, 0, len(g.providers))
	for _, p := range g.providers {
		names = append(names, p.Name())
	}
	return names
}
