package i18n

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"golang.org/x/text/message/catalog"
)

// Options says where a Catalog's messages come from and how it picks a
// language.
type Options struct {
	// Dir, when set, holds message files named by language tag (de.json,
	// pt-BR.json). Each message in one replaces the shipped message of the
	// same ID and language; a file for a language that does not ship adds
	// it, with English for the messages it leaves out. New message IDs (for
	// an operator's own templates) go in en.json, and then in any language.
	Dir string
	// Locale, when set, is the language of every page, whatever the
	// browser asks for; it must be one that the catalogue has. Default:
	// each request's Accept-Language.
	Locale string
	Logger *zap.Logger
}

// Catalog holds every language's messages. Safe for concurrent use.
type Catalog struct {
	// params are each message's placeholder names, sorted: the order of
	// the arguments of the formatted message (English defines them).
	params  map[string][]string
	locales []*Locale // English first
	matcher language.Matcher
	pinned  *Locale
}

// Load reads the shipped message files and those of opts.Dir, and checks
// them: a message file must be valid JSON of known IDs, its placeholders
// must be those of the English message, and its plural forms those of its
// language. Errors name the file and the message.
func Load(opts Options) (*Catalog, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	files, err := readFiles(opts.Dir)
	if err != nil {
		return nil, err
	}
	en := files[language.English]
	c := &Catalog{params: map[string][]string{}}
	for id, msg := range en.messages {
		c.params[id] = msg.placeholders()
	}
	b := catalog.NewBuilder(catalog.Fallback(language.English))
	tags := []language.Tag{language.English}
	for tag := range files {
		if tag != language.English {
			tags = append(tags, tag)
		}
	}
	slices.SortFunc(tags[1:], func(a, b language.Tag) int { return strings.Compare(a.String(), b.String()) })
	for _, tag := range tags {
		f := files[tag]
		var missing int
		for id := range en.messages {
			msg, ok := f.messages[id]
			if !ok {
				missing++
				msg = en.messages[id] // English stands in for an untranslated message
			}
			if err := c.set(b, tag, id, msg, !ok); err != nil {
				return nil, fmt.Errorf("messages: %s: message %q %w", msg.source, id, err)
			}
		}
		for id, msg := range f.messages {
			if _, ok := en.messages[id]; !ok {
				return nil, fmt.Errorf("messages: %s: message %q is not in the English messages (en.json): a typo, or a new message that needs its English first", msg.source, id)
			}
		}
		if missing > 0 {
			opts.Logger.Warn("messages not translated: English is shown for them",
				zap.String("language", tag.String()), zap.Int("missing", missing), zap.String("file", f.source))
		}
		c.locales = append(c.locales, newLocale(c, tag, b))
	}
	c.matcher = language.NewMatcher(tags)
	if opts.Locale != "" {
		tag, err := ParseTag(opts.Locale)
		if err != nil {
			return nil, err
		}
		l, ok := c.match([]language.Tag{tag})
		if !ok {
			return nil, fmt.Errorf("locale %q: there are no messages in that language (there are: %s); add a %s.json to the messages directory",
				opts.Locale, strings.Join(c.Languages(), ", "), opts.Locale)
		}
		c.pinned = l
	}
	return c, nil
}

// ParseTag reads the locale option, a BCP 47 language tag like de or pt-BR.
func ParseTag(locale string) (language.Tag, error) {
	tag, err := language.Parse(locale)
	if err != nil {
		return language.Und, fmt.Errorf("locale %q is not a language tag like de or pt-BR", locale)
	}
	return tag, nil
}

// set compiles one message of one language into the builder.
func (c *Catalog) set(b *catalog.Builder, tag language.Tag, id string, msg text, standIn bool) error {
	compiled, err := msg.compile(tag, c.params[id], standIn)
	if err != nil {
		return err
	}
	if err := b.Set(tag, id, compiled); err != nil {
		return fmt.Errorf("does not compile: %w", err)
	}
	return nil
}

// Languages lists the catalogue's languages, English first.
func (c *Catalog) Languages() []string {
	out := make([]string, len(c.locales))
	for i, l := range c.locales {
		out[i] = l.lang
	}
	return out
}

// Locales are the catalogue's locales, English first.
func (c *Catalog) Locales() []*Locale { return c.locales }

// IDs lists the catalogue's message IDs, sorted.
func (c *Catalog) IDs() []string { return slices.Sorted(maps.Keys(c.params)) }

// Params returns the placeholder names of message id, sorted, and whether
// the catalogue has that message.
func (c *Catalog) Params(id string) ([]string, bool) {
	p, ok := c.params[id]
	return p, ok
}

// Pinned reports whether every page has one language (the locale option),
// so that the answer does not vary with Accept-Language.
func (c *Catalog) Pinned() bool { return c.pinned != nil }

// English is the English locale.
func (c *Catalog) English() *Locale { return c.locales[0] }

// maxAcceptLanguage bounds the part of an Accept-Language header that is
// read: browsers send a few dozen bytes; a long one costs parsing time only.
const maxAcceptLanguage = 256

// Negotiate returns the locale for a request's Accept-Language header: the
// pinned locale when there is one, else the best match among the
// catalogue's languages, else English.
func (c *Catalog) Negotiate(acceptLanguage string) *Locale {
	if c.pinned != nil {
		return c.pinned
	}
	if acceptLanguage == "" {
		return c.locales[0]
	}
	if len(acceptLanguage) > maxAcceptLanguage {
		acceptLanguage = acceptLanguage[:maxAcceptLanguage]
		if i := strings.LastIndexByte(acceptLanguage, ','); i > 0 {
			acceptLanguage = acceptLanguage[:i]
		}
	}
	tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
	if err != nil {
		// One malformed entry spoils the whole header for the parser: read
		// the entries one by one, in the order sent, and skip the bad ones.
		tags = tags[:0]
		for part := range strings.SplitSeq(acceptLanguage, ",") {
			if t, _, err := language.ParseAcceptLanguage(part); err == nil {
				tags = append(tags, t...)
			}
		}
	}
	if l, ok := c.match(tags); ok {
		return l
	}
	return c.locales[0]
}

// match returns the catalogue's locale that best fits tags, if any fits.
func (c *Catalog) match(tags []language.Tag) (*Locale, bool) {
	if len(tags) == 0 {
		return nil, false
	}
	_, i, confidence := c.matcher.Match(tags...)
	if confidence == language.No {
		return nil, false
	}
	return c.locales[i], true
}

// newLocale returns the locale of tag, formatting with the builder's
// messages.
func newLocale(c *Catalog, tag language.Tag, b *catalog.Builder) *Locale {
	l := &Locale{cat: c, lang: tag.String(), rtl: rightToLeft(tag),
		printer: message.NewPrinter(tag, message.Catalog(b)), fixed: map[string]string{}}
	for id, params := range c.params {
		if len(params) == 0 {
			l.fixed[id] = l.printer.Sprintf(id)
		}
	}
	return l
}
