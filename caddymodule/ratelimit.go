package caddymodule

import (
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

// clientIP is the client that the abuse limits count and the audit log
// names: the peer, or the address a proxy that Caddy trusts
// (trusted_proxies) reports; never a header from an untrusted peer. With
// trusted_proxies_strict it is Caddy's client_ip: the right-most address of
// the client IP headers that is not a trusted proxy's. Without it, Caddy
// takes the left-most valid address, which is the client's to choose
// (proxies append the peer they saw to what the client sent), so the
// gateway takes the right-most one itself: the client as the proxy in front
// of Caddy saw it. Behind more than one proxy that is the next proxy, and
// only trusted_proxies_strict, which knows them, finds the client.
func clientIP(r *http.Request) string {
	ctx := r.Context()
	if trusted, _ := caddyhttp.GetVar(ctx, caddyhttp.TrustedProxyVarKey).(bool); trusted {
		if srv, ok := ctx.Value(caddyhttp.ServerCtxKey).(*caddyhttp.Server); ok && srv.TrustedProxiesStrict == 0 {
			if ip := lastForwardedIP(r.Header, srv.ClientIPHeaders); ip != "" {
				return ip
			}
		}
	}
	if ip, ok := caddyhttp.GetVar(ctx, caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return ip
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}

// lastForwardedIP returns the right-most valid address of the first of
// headers that has one (a comma-separated list, each value maybe with a
// port or an IPv6 zone, as Caddy reads them), or "".
func lastForwardedIP(h http.Header, headers []string) string {
	for _, name := range headers {
		parts := strings.Split(strings.Join(h.Values(name), ","), ",")
		for _, part := range slices.Backward(parts) {
			host, _, err := net.SplitHostPort(strings.TrimSpace(part))
			if err != nil {
				host = strings.TrimSpace(part)
			}
			host, _, _ = strings.Cut(host, "%")
			if ip, err := netip.ParseAddr(host); err == nil {
				return ip.String()
			}
		}
	}
	return ""
}
