#!/bin/sh
# Builds Traefik from its Go module and installs it as /usr/local/bin/traefik
# (or $TRAEFIK_BIN) for the forward-auth tests through a real Traefik
# (caddymodule/forwardauth_traefik_test.go). Traefik publishes no Debian
# package, and `go install github.com/traefik/traefik/v3/cmd/traefik@VERSION`
# refuses a module whose go.mod has replace directives, so the module's source
# is copied, patched (traefik-$VERSION.patch, beside this script, says why) and
# built as the main module.
#
# Idempotent: the binary reports VERSION+socialgate.<hash of this script and
# the patch> in `traefik version`; when it does already, nothing is done.
set -eu

VERSION=v3.7.13
here=$(cd "$(dirname "$0")" && pwd)
patchfile="$here/traefik-$VERSION.patch"
dest=${TRAEFIK_BIN:-/usr/local/bin/traefik}
stamp="$VERSION+socialgate.$(cat "$here/install.sh" "$patchfile" | sha256sum | cut -c1-12)"

if [ -x "$dest" ] && "$dest" version 2>/dev/null | grep -qF "$stamp"; then
	echo "traefik $stamp is installed at $dest"
	exit 0
fi

work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT INT TERM
cd "$work"
# Outside any module, so that the checkout's go.mod is neither read nor changed.
dir=$(GOFLAGS= go mod download -json "github.com/traefik/traefik/v3@$VERSION" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
	echo "install.sh: no source for github.com/traefik/traefik/v3@$VERSION" >&2
	exit 1
fi
cp -R "$dir" src
chmod -R u+w src
patch -p1 -s -d src <"$patchfile"
(cd src && GOFLAGS=-mod=readonly CGO_ENABLED=0 go build -trimpath -o "$work/traefik" \
	-ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$stamp" ./cmd/traefik)
install -m 0755 "$work/traefik" "$dest"
echo "traefik $stamp installed at $dest"
