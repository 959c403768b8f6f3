package caddymodule

import (
	_ "github.com/caddyserver/caddy/v2"
	_ "github.com/caddyserver/caddy/v2/caddytest"
	_ "github.com/coreos/go-oidc/v3/oidc"
	_ "github.com/dgraph-io/badger/v4"
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/gorilla/securecookie"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/singleflight"
)
