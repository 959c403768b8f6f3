// Command socialgate is Caddy with its standard modules and the socialgate
// authentication gateway built in. It takes every command and flag Caddy does:
//
//	socialgate run --config Caddyfile.example
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/socialgate/socialgate/caddymodule"
)

func main() {
	caddycmd.Main()
}
