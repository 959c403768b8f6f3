// Command socialgate is Caddy with its standard modules and the socialgate
// authentication gateway built in. It takes every command and flag Caddy
// does, and the socialgate operator commands (socialgate help lists them
// under their own heading):
//
//	socialgate run --config Caddyfile.example
package main

import (
	"os"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/socialgate/socialgate/caddymodule"
)

func main() {
	caddy.CustomBinaryName = "socialgate"
	caddy.CustomLongDescription = caddymodule.Description
	// The bare command and its help flag show what `socialgate help` does:
	// only a command that runs groups the socialgate commands (see
	// caddymodule's cmd.go).
	if len(os.Args) == 1 || len(os.Args) == 2 && (os.Args[1] == "-h" || os.Args[1] == "--help") {
		os.Args = []string{os.Args[0], "help"}
	}
	caddycmd.Main()
}
