package config

import (
	"fmt"
	"net/netip"

	"github.com/caddyserver/caddy/v2"
)

// VerifyListener is forward_auth's own listener: a plain HTTP/1.1 server,
// outside Caddy's HTTP app, that serves only the verify endpoint
// (<prefix>/verify and <prefix>/verify/<policy>; every other path is 404),
// with the same answers and policies. It costs a proxy's question less CPU
// than Caddy's handler chain. See docs/forward-auth-listener.md.
type VerifyListener struct {
	// Address is where it listens, host:port (127.0.0.1:4181), one TCP
	// port. Required.
	Address string `json:"address"`
	// Trusted are the IP ranges (CIDR, or one address) whose connections
	// may ask: the TCP peer's address decides, never a header; any other
	// peer gets verify's 403. Default: loopback only (127.0.0.0/8, ::1).
	Trusted []string `json:"trusted,omitempty"`
}

// DefaultVerifyTrusted are VerifyListener.Trusted's default: loopback.
var DefaultVerifyTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// Parse checks l and returns its address and trusted ranges; the error
// names the setting that is wrong.
func (l *VerifyListener) Parse() (caddy.NetworkAddress, []netip.Prefix, error) {
	addr, err := caddy.ParseNetworkAddress(l.Address)
	if err != nil {
		return addr, nil, fmt.Errorf("forward_auth listen %q: %v", l.Address, err)
	}
	switch {
	case addr.Network != "tcp" && addr.Network != "tcp4" && addr.Network != "tcp6":
		return addr, nil, fmt.Errorf("forward_auth listen %q: want a TCP address like 127.0.0.1:4181, not network %s", l.Address, addr.Network)
	case addr.PortRangeSize() != 1 || addr.StartPort == 0:
		return addr, nil, fmt.Errorf("forward_auth listen %q: want one port, like 127.0.0.1:4181", l.Address)
	}
	if len(l.Trusted) == 0 {
		return addr, DefaultVerifyTrusted, nil
	}
	trusted := make([]netip.Prefix, 0, len(l.Trusted))
	for _, s := range l.Trusted {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return addr, nil, fmt.Errorf("forward_auth listen: trusted %q is not an IP range like 10.0.0.0/8 or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		trusted = append(trusted, p.Masked())
	}
	return addr, trusted, nil
}
