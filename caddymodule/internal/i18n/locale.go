package i18n

import (
	"slices"

	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Locale formats messages in one language. Safe for concurrent use.
type Locale struct {
	cat     *Catalog
	lang    string
	rtl     bool
	printer *message.Printer
	// fixed are the messages without placeholders, formatted once.
	fixed map[string]string
}

// Lang is the locale's BCP 47 tag, for <html lang> and Content-Language.
func (l *Locale) Lang() string { return l.lang }

// Dir is the locale's writing direction, for <html dir>: "rtl" or "ltr".
func (l *Locale) Dir() string {
	if l.rtl {
		return "rtl"
	}
	return "ltr"
}

// Unicode's first-strong isolate and pop directional isolate: text set
// between them is laid out on its own, so that an English name or an email
// address inside an Arabic sentence neither reorders the sentence nor is
// reordered by it.
const (
	fsi = "\u2068"
	pdi = "\u2069"
)

// Text formats m in the locale's language. The zero Message says nothing
// (""); an ID that the catalogue lacks comes out as the ID itself (tests
// check that none is missing), or as its code (Code). In a
// right-to-left language, text arguments are isolated (FSI … PDI).
func (l *Locale) Text(m Message) string {
	if m.verbatim {
		return m.ID
	}
	if s, ok := l.fixed[m.ID]; ok {
		return s
	}
	params, ok := l.cat.params[m.ID]
	if !ok && m.code != "" {
		return m.code
	}
	if !ok {
		return m.ID
	}
	args := make([]any, len(params))
	for i := 0; i+1 < len(m.Args); i += 2 {
		name, _ := m.Args[i].(string)
		n := slices.Index(params, name)
		if n < 0 {
			continue
		}
		v := m.Args[i+1]
		if s, ok := v.(string); ok && l.rtl {
			v = fsi + s + pdi
		}
		args[n] = v
	}
	return l.printer.Sprintf(m.ID, args...)
}

// T formats message id with args (name, value pairs) in the locale's
// language: the templates' way to say something.
func (l *Locale) T(id string, args ...any) string { return l.Text(M(id, args...)) }

// rtlScripts are the scripts written from right to left that CLDR knows.
var rtlScripts = []string{"Adlm", "Arab", "Hebr", "Mand", "Mend", "Nkoo", "Rohg", "Samr", "Syrc", "Thaa", "Yezi"}

// rightToLeft reports whether tag's language is written right to left, by
// its script (or the script it is most likely written in: ar → Arab).
func rightToLeft(tag language.Tag) bool {
	script, _ := tag.Script()
	return slices.Contains(rtlScripts, script.String())
}
