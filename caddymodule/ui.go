package caddymodule

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// UIConfig brands the gateway's pages.
type UIConfig struct {
	// AppName is shown in page titles and headings. Default: socialgate.
	AppName string `json:"app_name,omitempty"`
	// LogoURL is an image shown above each page's heading. Default: none.
	LogoURL string `json:"logo_url,omitempty"`
	// Accent is the hex colour of primary buttons. One that white text
	// does not contrast with at WCAG AA (4.5:1) gets dark text, or a darker
	// shade of it, with a warning at load. Default: #1f5ad1.
	Accent string `json:"accent,omitempty"`
	// Templates is a directory whose files replace the embedded templates of
	// the same name (layout.html, sign-in.html, sign-out.html, error.html,
	// account.html, reauthorize.html).
	Templates string `json:"templates,omitempty"`
	// Messages is a directory of message files named by language (de.json,
	// pt-BR.json) whose messages replace the shipped ones of the same ID, or
	// add a language; see docs/localization.md. Default: the shipped
	// English, German, French, Spanish, Japanese and Arabic.
	Messages string `json:"messages,omitempty"`
	// Locale pins every page to one language (a tag like de or pt-BR that
	// the messages have). Default: each browser's Accept-Language, else
	// English.
	Locale string `json:"locale,omitempty"`
}

// renderer returns the pages' renderer for c; a nil c is every default.
func (c *UIConfig) renderer(logger *zap.Logger) (*ui.Renderer, error) {
	if c == nil {
		c = &UIConfig{}
	}
	r, err := ui.New(ui.Options{AppName: c.AppName, LogoURL: c.LogoURL, Accent: c.Accent,
		TemplateDir: c.Templates, MessageDir: c.Messages, Locale: c.Locale, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	return r, nil
}
