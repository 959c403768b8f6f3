// Package confcheck holds the small rules that every configuration check
// shares: what a mistyped name was meant to be, and which servers the
// gateway may reach over plain http.
package confcheck

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Hint tells what name, which is none of known, was meant to be: "did you
// mean github?" when one of them is a likely typo of it, else the list,
// "want one of a, b, c" ("none is configured" when known is empty).
func Hint(name string, known []string) string {
	if m := closest(name, known); m != "" {
		return "did you mean " + m + "?"
	}
	if len(known) == 0 {
		return "none is configured"
	}
	return "want one of " + strings.Join(known, ", ")
}

// closest returns the known name within a typo's reach of name: at most
// one edit (a swap of neighbours counts as one) for names shorter than
// eight characters, two from eight on, and always fewer than half the name's
// length; "" when none or several are that near. gitlab is not a typo of
// github.
func closest(name string, known []string) string {
	limit := 1
	if len(name) >= 8 {
		limit = 2
	}
	if limit > len(name)/2 {
		limit = len(name) / 2
	}
	best, bestDist, tie := "", limit+1, false
	for _, k := range known {
		d := distance(strings.ToLower(name), strings.ToLower(k))
		switch {
		case d < bestDist:
			best, bestDist, tie = k, d, false
		case d == bestDist:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// distance is the Damerau-Levenshtein distance (optimal string alignment):
// insertions, deletions, substitutions and swaps of neighbours, by bytes.
func distance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// ServerURL checks the URL of a server the gateway calls or sends browsers
// to (a provider's endpoints, a webhook receiver): absolute, without user
// name, password or fragment, and https unless the host cannot be on the
// public internet (see PrivateHost), where what travels in clear text
// (client secrets, codes, tokens, personal data) stays on the machine or
// the private network.
func ServerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	if u.Scheme == "http" && !PrivateHost(u.Hostname()) {
		return fmt.Errorf("%q must use https (plain http is only for localhost, a private address or a single-label host name)", raw)
	}
	return nil
}

// PrivateHost reports whether host (a name or an IP address, without port)
// cannot be on the public internet: localhost and *.localhost, a loopback,
// private (RFC 1918, RFC 4193) or link-local address, or a single-label name
// such as a container's (keycloak, app).
func PrivateHost(host string) bool {
	if Loopback(host) {
		return true
	}
	if ip, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		ip = ip.Unmap()
		return ip.IsPrivate() || ip.IsLinkLocalUnicast()
	}
	return host != "" && !strings.Contains(strings.TrimSuffix(host, "."), ".")
}

// Loopback reports whether host (a name or an IP address, without port) is
// this machine only: localhost, *.localhost or a loopback address.
func Loopback(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
