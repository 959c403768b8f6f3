package gateway

import (
	"net/http"
	"strings"
)

// upgradesHTTP reports whether the request asks to switch the connection
// to another version of HTTP: an Upgrade token h2c, h2 or HTTP (any case,
// with or without a version, anywhere in any Upgrade line). A proxy that
// passes such an upgrade on (Caddy's reverse_proxy pipes a 101 both ways)
// hands the client a connection to the app on which every later request
// skips the gateway: an HTTP/2 stream after "Upgrade: h2c" carries forged
// X-Auth-* headers and no session at all. WebSocket and other protocols
// are left alone: what flows over them is not requests to the app.
func upgradesHTTP(h http.Header) bool {
	for _, v := range h["Upgrade"] {
		for v != "" {
			var token string
			token, v, _ = strings.Cut(v, ",")
			name, _, _ := strings.Cut(strings.Trim(token, " \t"), "/")
			name = strings.Trim(name, " \t")
			if strings.EqualFold(name, "h2c") || strings.EqualFold(name, "h2") || strings.EqualFold(name, "http") {
				return true
			}
		}
	}
	return false
}
