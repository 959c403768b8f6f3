package caddymodule

import (
	"net"
	"sort"
	"strconv"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// announceReady logs, once the config's servers are provisioned, the line
// that tells a person where to go: "socialgate ready: sign in at URL (dev
// provider at URL)". The sign-in URL is the first site (in server name,
// then route order) whose routes use the socialgate handler; without one,
// the gateway's sign-in page on the first HTTP server's address. A reload
// that leaves both URLs as they were logs nothing: the line is remembered
// by the store, which reloads share.
func (a *App) announceReady() {
	line := "socialgate ready"
	if signIn := a.signInURL(); signIn != "" {
		line += ": sign in at " + signIn
	}
	if a.DevProvider != nil {
		line += " (dev provider at http://" + a.DevProvider.Address() + ")"
	}
	if a.storeRef.announce(line) {
		a.logger.Info(line)
	}
}

// announce records line as the last ready line logged on this store and
// reports whether it differs from the one before.
func (o *openStore) announce(line string) bool {
	o.announcedMu.Lock()
	defer o.announcedMu.Unlock()
	if o.announced == line {
		return false
	}
	o.announced = line
	return true
}

// signInURL is where a person signs in: the first site using the
// socialgate handler, else the sign-in page on the first HTTP server, else
// "" when the config has no HTTP server.
func (a *App) signInURL() string {
	app, err := a.ctx.AppIfConfigured("http")
	if err != nil {
		return ""
	}
	servers := app.(*caddyhttp.App).Servers
	names := make([]string, 0, len(servers))
	for name := range servers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		srv := servers[name]
		for _, r := range srv.Routes {
			if usesSocialgate(r) {
				return siteURL(srv, firstHost(r))
			}
		}
	}
	if len(names) == 0 {
		return ""
	}
	return siteURL(servers[names[0]], "") + a.Prefix + "/sign-in"
}

// usesSocialgate reports whether r or one of its subroutes runs the
// socialgate handler.
func usesSocialgate(r caddyhttp.Route) bool {
	for _, h := range r.Handlers {
		switch h := h.(type) {
		case *Handler:
			return true
		case *caddyhttp.Subroute:
			for _, sub := range h.Routes {
				if usesSocialgate(sub) {
					return true
				}
			}
		}
	}
	return false
}

// firstHost is the first host r matches, or "" when it matches any.
func firstHost(r caddyhttp.Route) string {
	for _, set := range r.MatcherSets {
		for _, m := range set {
			if hosts, ok := m.(*caddyhttp.MatchHost); ok && len(*hosts) > 0 {
				return (*hosts)[0]
			}
		}
	}
	return ""
}

// siteURL is the URL of host (localhost when "") on srv's first listener:
// https when the server has TLS, the port left out when it is the scheme's
// default.
func siteURL(srv *caddyhttp.Server, host string) string {
	scheme, port := "http", uint(80)
	if len(srv.TLSConnPolicies) > 0 {
		scheme, port = "https", 443
	}
	if len(srv.Listen) > 0 {
		if addr, err := caddy.ParseNetworkAddress(srv.Listen[0]); err == nil {
			port = addr.StartPort
			if host == "" && addr.Host != "" {
				host = addr.Host
			}
		}
	}
	if host == "" {
		host = "localhost"
	}
	if (scheme == "http" && port == 80) || (scheme == "https" && port == 443) {
		return scheme + "://" + host
	}
	return scheme + "://" + net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}
