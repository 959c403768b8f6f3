package ui

import (
	"embed"
	"html/template"
	"io/fs"
	"path"
	"strings"
)

// The provider marks in icons/ are each brand's own mark, drawn as its
// guidelines ask for a sign-in button: Google's four-colour G, Microsoft's
// four squares, Slack's, GitLab's, LinkedIn's, Discord's, Spotify's,
// Twitch's, Facebook's and Bitbucket's marks in their brand colours;
// GitHub's, Apple's, X's and Notion's in black (currentColor: the button's
// text colour), never recoloured or reshaped. Their outlines come from the
// CC0 icon sets svg-logos (@iconify-json/logos) and Simple Icons, with the
// colours updated to each brand's current ones; the marks stay their
// owners' trademarks. generic.svg (a key) stands for oidc, oauth2 and any
// other provider.
//
//go:embed icons/*.svg
var iconFiles embed.FS

// icons are the marks by provider kind, read once.
var icons = func() map[string]template.HTML {
	m := map[string]template.HTML{}
	files, _ := fs.Glob(iconFiles, "icons/*.svg")
	for _, f := range files {
		svg, _ := iconFiles.ReadFile(f)
		// Embedded files of this package: trusted markup.
		m[strings.TrimSuffix(path.Base(f), ".svg")] = template.HTML(strings.TrimSpace(string(svg)))
	}
	return m
}()

// icon is the mark of a provider kind (google, github, …), or the generic
// key for the rest.
func icon(kind string) template.HTML {
	if svg, ok := icons[kind]; ok {
		return svg
	}
	return icons["generic"]
}
