package ui

import (
	"strings"
	"unicode"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
)

// ConsoleView is what a page of the operator console shows: one of Users,
// User and Gateway.
type ConsoleView struct {
	// Base is the console's path (/_auth/admin); Here is this page's, where
	// its forms come back to after a re-authentication.
	Base, Here string
	// Section is the navigation entry of this page: users or gateway.
	Section string
	Users   *ConsoleUsers
	User    *ConsoleUser
	Gateway *ConsoleGateway
}

// ConsoleUsers is the console's user list: a page of Total matches of Query.
type ConsoleUsers struct {
	Query           string
	Rows            []ConsoleUserRow
	Total, From, To int
	// More means more than Total users match (a search counts up to
	// store.SearchCount).
	More             bool
	PrevURL, NextURL string
}

// ConsoleUserRow is one user in the list.
type ConsoleUserRow struct {
	ID, URL, Name, Email, ExternalID, Created, LastSignIn string
	Banned, Locked                                        bool
}

// ConsoleUser is one user's page.
type ConsoleUser struct {
	ID, Name, Username, ExternalID, ImageURL, Created, Updated, LastSignIn string
	Banned, Locked                                                         bool
	Emails                                                                 []EmailView
	Accounts                                                               []ConsoleAccount
	Sessions                                                               []ConsoleSession
	// PublicMetadata and PrivateMetadata are the metadata as indented JSON
	// (or the text the operator sent, when MetadataError refused it).
	PublicMetadata, PrivateMetadata string
	MetadataError                   i18n.Message
	// Audit are the latest audit entries about the user, newest first.
	Audit []ConsoleAudit
}

// Initials stand for the user's picture on the console, which loads none:
// a picture URL is the user's provider's to choose, and fetching it would
// tell that server which operator looked at whom, and when. The first
// letters of the first two words of the name, else of the id's end.
func (u ConsoleUser) Initials() string {
	var out []rune
	for _, w := range strings.Fields(u.Name) {
		if r := []rune(w); len(out) < 2 {
			out = append(out, unicode.ToUpper(r[0]))
		}
	}
	if len(out) == 0 {
		_, id, _ := strings.Cut(u.ID, "_")
		if id == "" {
			return "?"
		}
		return strings.ToUpper(id[:1])
	}
	return string(out)
}

// ConsoleAudit is one audit entry on a user's page: Action is what was
// done, in words (i18n.Code of its code: user.ban, oauth_token.read…),
// Actor who did it (console:<user id>,
// api_key:<fingerprint>), Subject what it was done to beyond the user (a
// provider and account).
type ConsoleAudit struct {
	When, Actor, IP, Subject string
	Action                   i18n.Message
}

// ConsoleAccount is one linked account: TokenState says whether its
// provider token is fresh, expired (refreshed at its next use, or without
// a refresh token), missing, or needs reconnecting.
type ConsoleAccount struct {
	ID, ProviderName, Email, Username string
	TokenState                        i18n.Message
	Scopes                            []string
	Warn, CanDisconnect               bool
}

// ConsoleSession is one live session, named by Handle (not its id, which
// is a secret).
type ConsoleSession struct {
	Handle, IP, Created, LastActive string
	Device                          i18n.Message
}

// ConsoleGateway is the gateway page.
type ConsoleGateway struct {
	Providers    []ConsoleProvider
	Webhooks     []ConsoleWebhook
	RedirectURLs []ConsoleRedirectURL
	// RedirectURLError is why an added redirect URL was refused.
	RedirectURLError i18n.Message
	RedirectURLInput string
	Chart            *Chart
	// ActiveSessions is how many sessions are live, to the hour
	// (store.Store.ActiveSessions).
	ActiveSessions int
}

// ConsoleProvider is a configured provider and whether it answers now.
type ConsoleProvider struct {
	Name, DisplayName, Problem string
	SignIn, Up                 bool
}

// ConsoleWebhook is one webhook endpoint's delivery state.
type ConsoleWebhook struct {
	// Backlog is the number of events waiting, like "12" or "1000+".
	Name, URL, LastDelivered, LastError, Backlog string
}

// ConsoleRedirectURL is one native redirect URL.
type ConsoleRedirectURL struct {
	ID, URL string
}

// Chart is a bar chart drawn as SVG by the template: Width × Height, one
// bar per day.
type Chart struct {
	Width, Height, Baseline int
	// Max is the highest count of a day, Total their sum; Partial says
	// that the counts do not cover every event.
	Max, Total int
	Bars       []ChartBar
	Partial    bool
}

// ChartBar is one day: its label, count, and rectangle.
type ChartBar struct {
	Label      string
	Count      int
	X, Y, W, H int
	LabelX     int
	ShowLabel  bool
}
