package caddymodule

import (
	"slices"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/socialgate/socialgate/caddymodule/internal/config"
	"github.com/socialgate/socialgate/caddymodule/internal/devprovider"
)

// parseDevProvider reads the dev_provider option of the socialgate global
// option (its syntax is in App.UnmarshalCaddyfile's doc comment). Each
// provider block in it adds a provider that the dev provider plays besides
// dev.
func parseDevProvider(d *caddyfile.Dispenser) (*config.DevProvider, error) {
	dev := new(config.DevProvider)
	if d.NextArg() {
		dev.Listen = d.Val()
	}
	if d.NextArg() {
		return nil, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch d.Val() {
		case "listen":
			err = oneArg(d, &dev.Listen)
		case "access_token_lifetime":
			err = durationArg(d, &dev.AccessTokenLifetime)
		case "link_by_email":
			dev.LinkByEmail, err = onOff(d)
		case "allow_remote":
			dev.AllowRemote, err = true, noArgs(d)
		case "provider":
			var id config.DevIdentity
			if id, err = parseDevIdentity(d); err == nil &&
				slices.ContainsFunc(dev.Providers, func(p config.DevIdentity) bool { return p.Name == id.Name }) {
				return nil, d.Errf("dev_provider: provider %s is defined twice", id.Name)
			}
			dev.Providers = append(dev.Providers, id)
		default:
			return nil, unknownOption(d, devProviderOptions, "unrecognized dev_provider option %q", d.Val())
		}
		if err != nil {
			return nil, err
		}
	}
	return dev, nil
}

// parseDevIdentity reads a provider block inside dev_provider.
func parseDevIdentity(d *caddyfile.Dispenser) (config.DevIdentity, error) {
	var id config.DevIdentity
	if !d.NextArg() {
		return id, d.Err("dev_provider: provider needs a name, like provider corp")
	}
	id.Name = d.Val()
	if err := config.CheckDevName(id.Name); err != nil {
		return id, d.Errf("dev_provider: provider: %v", err)
	}
	if d.NextArg() {
		return id, d.ArgErr()
	}
	for nesting := d.Nesting(); d.NextBlock(nesting); {
		var err error
		switch opt := d.Val(); opt {
		case "display_name":
			err = oneArg(d, &id.DisplayName)
		case "sign_in":
			id.SignIn, err = onOff(d)
		case "link_by_email":
			id.LinkByEmail, err = onOff(d)
		case "grants":
			var scopes []string
			if scopes, err = someArgs(d); err != nil {
				return id, err
			}
			for _, sc := range scopes {
				if err := devprovider.CheckScope(sc); err != nil {
					return id, d.Errf("dev_provider: provider %s: grants: %v", id.Name, err)
				}
			}
			id.Grants = append(id.Grants, scopes...)
		case "scopes":
			// A provider block's scopes are asked for at every sign-in; here
			// the scopes are granted, and asked for only where needed.
			return id, d.Errf("unrecognized option \"scopes\" in dev_provider provider %s: the scopes it grants when asked for are set with grants <scope...>", id.Name)
		default:
			return id, unknownOption(d, devIdentityOptions, "unrecognized option %q in dev_provider provider %s", opt, id.Name)
		}
		if err != nil {
			return id, err
		}
	}
	return id, nil
}
