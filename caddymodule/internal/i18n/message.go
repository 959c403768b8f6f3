// Package i18n puts the gateway's words into the reader's language: message
// catalogues (one JSON file per language, embedded, which operators can
// override or extend from a directory), the choice of a language from
// Accept-Language, and the formatting of a message with its arguments and
// plural forms through golang.org/x/text. Pages are localized; JSON answers
// for programs use the shipped English (Message.String).
//
// A new page (the operator console, say) adds its messages to every file
// in messages/ under IDs of its own (console.users_heading) and says them
// with ui's t function or with M; the tests refuse a file that lacks or
// adds a message, a plural form the language does not use, and a template
// or M call that names a missing message or other placeholders.
package i18n

import (
	"sync"

	"go.uber.org/zap"
)

// Message is a message ID with its arguments, which are name, value pairs:
// M("flow.denied", "provider", "GitHub"). It is what code hands to a page
// (a title, an error, a notice), to be put into the reader's language when
// the page is rendered.
type Message struct {
	ID   string
	Args []any

	verbatim bool
	// code, when set, is said instead of an ID that no catalogue has.
	code string
}

// Verbatim is text that no catalogue translates, said as it is in every
// language: data shown as a title, like a user's name on the console.
func Verbatim(text string) Message { return Message{ID: text, verbatim: true} }

// Code is the message prefix+code for a code that comes from data, like
// an audit entry's action: Code("audit.", "user.ban") says audit.user.ban.
// Where no catalogue has that message (an entry written by a newer
// version), the code itself is said, as it is.
func Code(prefix, code string) Message { return Message{ID: prefix + code, code: code} }

// M returns the message id with args, given as name, value pairs. Each name
// is a placeholder of the English message ({provider}); the value of the
// placeholder count (an int) chooses between plural forms.
func M(id string, args ...any) Message { return Message{ID: id, Args: args} }

// String is the message in the shipped English, which operators' message
// files never change: the wording of the JSON errors that programs read
// beside their stable code.
func (m Message) String() string { return shipped().English().Text(m) }

// shipped is the catalogue of the embedded message files alone.
var shipped = sync.OnceValue(func() *Catalog {
	c, err := Load(Options{Logger: zap.NewNop()})
	if err != nil {
		panic("i18n: the embedded message files are broken: " + err.Error())
	}
	return c
})
