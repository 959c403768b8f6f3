package forwardauth

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestRead_TheFormsEachProxySends(t *testing.T) {
	tests := []struct {
		name string
		h    http.Header
		want Original
	}{
		{"nginx auth_request", hdr("X-Original-URL", "https://App1.example.com/a/b?x=1&y=2", "X-Original-Method", "POST"),
			Original{Method: "POST", Scheme: "https", Host: "app1.example.com", URI: "/a/b?x=1&y=2"}},
		{"ingress-nginx without a path", hdr("X-Original-URL", "http://app.test:8080", "X-Original-Method", "GET"),
			Original{Method: "GET", Scheme: "http", Host: "app.test:8080", URI: "/"}},
		{"a query right after the host", hdr("X-Original-URL", "https://app.test?q=1"),
			Original{Method: "GET", Scheme: "https", Host: "app.test", URI: "/?q=1"}},
		{"Traefik", hdr("X-Forwarded-Method", "GET", "X-Forwarded-Proto", "https", "X-Forwarded-Host", "app2.example.com",
			"X-Forwarded-Uri", "/dash?tab=1", "X-Forwarded-For", "203.0.113.9"),
			Original{Method: "GET", Scheme: "https", Host: "app2.example.com", URI: "/dash?tab=1", Redirect: true}},
		{"Caddy forward_auth, IPv6 host", hdr("X-Forwarded-Method", "DELETE", "X-Forwarded-Proto", "HTTP", "X-Forwarded-Host", "[::1]:2015",
			"X-Forwarded-Uri", "/"),
			Original{Method: "DELETE", Scheme: "http", Host: "[::1]:2015", URI: "/", Redirect: true}},
		{"a path that starts with two slashes stays on the host", hdr("X-Original-URL", "https://app.test//evil.com/"),
			Original{Method: "GET", Scheme: "https", Host: "app.test", URI: "//evil.com/"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(tt.h, true)
			if got.URL() != tt.want.URL() {
				t.Errorf("URL() = %q, want %q", got.URL(), tt.want.URL())
			}
			got.url = ""
			if err != nil || got != tt.want {
				t.Fatalf("Read = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestRead_RefusesWhatAClientCouldSteer(t *testing.T) {
	fwd := func(kv ...string) http.Header {
		h := hdr("X-Forwarded-Proto", "https", "X-Forwarded-Host", "app.test", "X-Forwarded-Uri", "/")
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				h.Del(kv[i])
				continue
			}
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	tests := []struct {
		name    string
		h       http.Header
		trusted bool
		want    error
	}{
		{"an untrusted peer", hdr("X-Original-URL", "https://app.test/"), false, ErrUntrusted},
		{"an untrusted peer with nothing", hdr(), false, ErrUntrusted},
		{"no original URL", hdr("X-Forwarded-Host", "app.test"), true, ErrMissing},
		{"a client's X-Original-URL through Traefik", func() http.Header {
			h := fwd()
			h.Set("X-Original-URL", "https://evil.test/")
			return h
		}(), true, ErrAmbiguous},
		{"a client's X-Forwarded-Uri through nginx", hdr("X-Original-URL", "https://app.test/", "X-Forwarded-Uri", "/x"), true, ErrAmbiguous},
		{"X-Original-URL twice", hdr("X-Original-URL", "https://app.test/", "X-Original-URL", "https://evil.test/"), true, ErrAmbiguous},
		{"X-Forwarded-Uri twice", hdr("X-Forwarded-Uri", "/", "X-Forwarded-Uri", "/x"), true, ErrAmbiguous},
		{"X-Forwarded-Host twice", func() http.Header { h := fwd(); h.Add("X-Forwarded-Host", "evil.test"); return h }(), true, ErrHost},
		{"a comma list of hosts", fwd("X-Forwarded-Host", "app.test, evil.test"), true, ErrHost},
		{"a comma list of schemes", fwd("X-Forwarded-Proto", "https,http"), true, ErrScheme},
		{"no host", fwd("X-Forwarded-Host", ""), true, ErrHost},
		{"no scheme", fwd("X-Forwarded-Proto", ""), true, ErrScheme},
		{"javascript scheme", hdr("X-Original-URL", "javascript://app.test/%0aalert(1)"), true, ErrScheme},
		{"no scheme in X-Original-URL", hdr("X-Original-URL", "//evil.test/"), true, ErrScheme},
		{"userinfo", hdr("X-Original-URL", "https://app.test@evil.test/"), true, ErrHost},
		{"a backslash in the host", hdr("X-Original-URL", `https://evil.test\@app.test/`), true, ErrHost},
		{"percent-encoding in the host", fwd("X-Forwarded-Host", "evil%2etest"), true, ErrHost},
		{"a host starting with a dot", fwd("X-Forwarded-Host", ".app.test"), true, ErrHost},
		{"an empty label", fwd("X-Forwarded-Host", "app..test"), true, ErrHost},
		{"an empty port", fwd("X-Forwarded-Host", "app.test:"), true, ErrHost},
		{"a port that is no number", fwd("X-Forwarded-Host", "app.test:8o"), true, ErrHost},
		{"a long port", fwd("X-Forwarded-Host", "app.test:000443"), true, ErrHost},
		{"non-ASCII host", fwd("X-Forwarded-Host", "аpp.test"), true, ErrHost},
		{"bad IPv6", fwd("X-Forwarded-Host", "[::1"), true, ErrHost},
		{"empty IPv6", fwd("X-Forwarded-Host", "[]"), true, ErrHost},
		{"IPv6 then junk", fwd("X-Forwarded-Host", "[::1]evil.test"), true, ErrHost},
		{"a relative URI", fwd("X-Forwarded-Uri", "evil.test/"), true, ErrURI},
		{"an absolute URI", fwd("X-Forwarded-Uri", "https://evil.test/"), true, ErrURI},
		{"CR LF in the URI", fwd("X-Forwarded-Uri", "/a\r\nLocation: https://evil.test/"), true, ErrURI},
		{"an invalid percent-escape", fwd("X-Forwarded-Uri", "/a%zz"), true, ErrURI},
		{"a percent at the end", fwd("X-Forwarded-Uri", "/a%"), true, ErrURI},
		{"a space in the URI", fwd("X-Forwarded-Uri", "/a b"), true, ErrURI},
		{"a fragment", hdr("X-Original-URL", "https://app.test/#frag"), true, ErrURI},
		{"a URI that is too long", fwd("X-Forwarded-Uri", "/"+string(make([]byte, maxURILen))), true, ErrURI},
		{"a lower-case method", fwd("X-Forwarded-Method", "get"), true, ErrMethod},
		{"a method with a space", fwd("X-Forwarded-Method", "GET /"), true, ErrMethod},
		{"two methods", func() http.Header {
			h := fwd()
			h.Add("X-Forwarded-Method", "GET")
			h.Add("X-Forwarded-Method", "POST")
			return h
		}(), true, ErrMethod},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Read(tt.h, tt.trusted)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Read = %+v, %v; want %v", got, err, tt.want)
			}
			if got != (Original{}) {
				t.Fatalf("Read returned %+v with its error", got)
			}
		})
	}
}

func TestReadEnvoy(t *testing.T) {
	h := hdr("X-Forwarded-Proto", "https", "Cookie", "a=b")
	got, err := ReadEnvoy(h, true, "POST", "App.example.com", "/api/x?y=1")
	if want := (Original{Method: "POST", Scheme: "https", Host: "app.example.com", URI: "/api/x?y=1", Redirect: true}); err != nil || got != want {
		t.Fatalf("ReadEnvoy = %+v, %v; want %+v", got, err, want)
	}
	for name, tc := range map[string]struct {
		h         http.Header
		trusted   bool
		host, uri string
		want      error
	}{
		"untrusted":                  {h, false, "app.example.com", "/", ErrUntrusted},
		"a client's X-Original-URL":  {hdr("X-Forwarded-Proto", "https", "X-Original-URL", "https://evil.test/"), true, "app.example.com", "/", ErrAmbiguous},
		"a client's X-Forwarded-Uri": {hdr("X-Forwarded-Proto", "https", "X-Forwarded-Uri", "/"), true, "app.example.com", "/", ErrAmbiguous},
		"no X-Forwarded-Proto":       {hdr(), true, "app.example.com", "/", ErrScheme},
		"a host with userinfo":       {h, true, "app.example.com@evil.test", "/", ErrHost},
		"a URI with CR LF":           {h, true, "app.example.com", "/\r\n", ErrURI},
	} {
		if _, err := ReadEnvoy(tc.h, tc.trusted, "GET", tc.host, tc.uri); !errors.Is(err, tc.want) {
			t.Errorf("%s: ReadEnvoy = %v, want %v", name, err, tc.want)
		}
	}
}

func TestOriginal_URL(t *testing.T) {
	o := Original{Scheme: "https", Host: "app.test:8443", URI: "/a?b=c"}
	if got := o.URL(); got != "https://app.test:8443/a?b=c" {
		t.Fatalf("URL = %q", got)
	}
}

func FuzzRead(f *testing.F) {
	f.Add("https://app.test/a?b", "/x", "app.test", "https", "GET")
	f.Fuzz(func(t *testing.T, ou, fu, host, proto, method string) {
		h := http.Header{}
		if ou != "" {
			h.Set("X-Original-URL", ou)
		} else {
			h.Set("X-Forwarded-Uri", fu)
		}
		h.Set("X-Forwarded-Host", host)
		h.Set("X-Forwarded-Proto", proto)
		h.Set("X-Forwarded-Method", method)
		o, err := Read(h, true)
		if err != nil {
			return
		}
		// Whatever passes is a URL on the host the proxy named, read the
		// same way by a URL parser: no userinfo, no other host.
		u, err := url.Parse(o.URL())
		if err != nil || u.Host != o.Host || u.User != nil || u.Scheme != o.Scheme || u.RequestURI() == "" {
			t.Fatalf("Read accepted %+v, which parses as %+v (%v)", o, u, err)
		}
	})
}
