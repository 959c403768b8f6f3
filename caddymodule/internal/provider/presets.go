package provider

import (
	"slices"

	"golang.org/x/oauth2"
)

// preset is everything the gateway knows about one kind of provider. Each
// field switches on a generic mechanism; no preset has code of its own.
// URLs may use {tenant} (Config.Tenant), {base} (Config.BaseURL) and
// {client_id}; a Config URL replaces the preset's.
type preset struct {
	display string
	// oidc: an ID token is verified. The endpoints come from discovery at
	// issuer, unless authURL, tokenURL and jwksURL are all known (static).
	oidc   bool
	issuer string // OIDC issuer; for OAuth 2.0, the namespace of the user ids
	base   string // default Config.BaseURL, for presets whose URLs use {base}

	authURL, tokenURL, userinfoURL, emailsURL, jwksURL string

	// scopes are asked for at every authorization; nil for an OIDC preset
	// means openid email profile.
	scopes     []string
	authParams map[string]string
	// headers go with every back-channel request (token, profile, revoke).
	headers map[string]string
	// authStyle is how the client authenticates at the token endpoint;
	// AuthStyleAutoDetect follows discovery, else probes (Basic first).
	authStyle oauth2.AuthStyle
	tokenJSON bool // token requests are JSON, not a form (Notion)
	noPKCE    bool // the server breaks on PKCE parameters
	noNonce   bool // the ID token never carries the nonce (LinkedIn)

	// Profile: mapping reads the userinfo document, or the token response
	// when profileFromToken. OIDC presets read the ID token's claims.
	mapping          Mapping
	profileFromToken bool
	skipUserinfo     bool   // the userinfo endpoint adds nothing usable
	subjectClaim     string // a claim preferred over sub as the stable id
	email            emailRule
	emails           emailList // the emails endpoint (emailFromList)
	userField        bool      // the callback's user form field names the user (Apple)
	// linkByEmail: the preset's email rule is reliable enough that, at the
	// provider's own endpoints, its verified addresses link a first sign-in
	// to an existing user unless the operator says otherwise (LinksByEmail).
	linkByEmail bool
	// groupLists are the API lists that give the person's groups
	// (Config.GroupsFrom), by name, at paths below the userinfo URL;
	// groupsScope is the scope they need.
	groupLists  map[string]groupList
	groupsScope string

	// tenantIssuer: the issuer is per tenant; discovery's is a template
	// ({tenantid}) that the token's tid fills (Microsoft multi-tenant).
	tenantIssuer bool
	// clientSecretJWT: the client secret is an ES256 JWT signed with the
	// configured key (Apple).
	clientSecretJWT bool
	// publicClient: the server may know the gateway as a public client,
	// without a client secret (generic servers); every preset's needs one.
	publicClient bool
	scopeKey     string // token response key of the granted scopes; default "scope"
	// scopeAliases maps a scope as requested to how the token response may
	// name it when granted (Google answers "email" with .../userinfo.email).
	scopeAliases  map[string]string
	grantMessages []string // "message" texts meaning invalid_grant (Twitch)

	revoke revocation
}

// emailRule decides Profile.EmailVerified: whether the provider asserts,
// under its own rules, that the person controls the email.
type emailRule int

const (
	// emailClaim trusts email_verified (OIDC) or Mapping.EmailVerified.
	emailClaim emailRule = iota
	// emailNever: the provider does not verify emails, or does not say.
	emailNever
	// emailFromList reads the emails endpoint: only the primary address
	// counts, and only when the provider marks it verified.
	emailFromList
	// emailMicrosoft trusts the email only when xms_edov is true or the
	// account is a personal one: elsewhere any tenant admin sets it ("nOAuth").
	emailMicrosoft
	// emailApple trusts email_verified, except for relay addresses.
	emailApple
)

// groupList is an API list of the person's groups: an array of objects at
// path (below the userinfo URL), each naming one group by name, a Mapping
// path or template.
type groupList struct{ path, name string }

// emailList names the fields of an emails endpoint's answer.
type emailList struct {
	list                     string // dotted path to the array; "" when the document is the array
	email, primary, verified string
}

// revokeStyle is the shape of a provider's revocation request.
type revokeStyle int

const (
	revokeNone revokeStyle = iota
	// revokeForm is RFC 7009: a form with token and token_type_hint.
	revokeForm
	// revokeJSON sends {key: token} with Basic client authentication.
	revokeJSON
	// revokeBearer sends the access token as the request's bearer token.
	revokeBearer
)

// revokeAuth is how a form revocation request authenticates the client.
type revokeAuth int

const (
	revokeAuthClient   revokeAuth = iota // as at the token endpoint
	revokeAuthClientID                   // client_id only
	revokeAuthNone                       // the token alone
)

type revocation struct {
	style  revokeStyle
	url    string // "" for OIDC presets: discovery's revocation_endpoint
	method string // HTTP method of revokeJSON and revokeBearer
	key    string // JSON key of the token (revokeJSON)
	auth   revokeAuth
	// accessOnly: the endpoint takes access tokens only, not refresh tokens.
	accessOnly bool
}

// Personal Microsoft accounts all live in this tenant.
const msPersonalTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"

// twitchClaims asks Twitch for the email (and its verification) in the ID
// token, and for the picture and login name at userinfo.
const twitchClaims = `{"id_token":{"email":null,"email_verified":null},"userinfo":{"email":null,"email_verified":null,"picture":null,"preferred_username":null}}`

var presets = map[string]preset{
	KindOIDC:   {oidc: true, publicClient: true, revoke: revocation{style: revokeForm}},
	KindOAuth2: {publicClient: true, revoke: revocation{style: revokeForm}},
	"google": {
		display: "Google", linkByEmail: true, oidc: true, issuer: "https://accounts.google.com",
		authParams: map[string]string{"access_type": "offline", "include_granted_scopes": "true"},
		revoke:     revocation{style: revokeForm, auth: revokeAuthNone, url: "https://oauth2.googleapis.com/revoke"},
		scopeAliases: map[string]string{
			"email":   "https://www.googleapis.com/auth/userinfo.email",
			"profile": "https://www.googleapis.com/auth/userinfo.profile",
		},
	},
	"github": {
		display: "GitHub", linkByEmail: true, issuer: "https://github.com",
		authURL:     "https://github.com/login/oauth/authorize",
		tokenURL:    "https://github.com/login/oauth/access_token",
		userinfoURL: "https://api.github.com/user",
		emailsURL:   "https://api.github.com/user/emails",
		scopes:      []string{"user:email"},
		authStyle:   oauth2.AuthStyleInParams,
		mapping:     Mapping{ID: "id", Email: "email", Name: "name", Username: "login", Picture: "avatar_url"},
		email:       emailFromList,
		emails:      emailList{email: "email", primary: "primary", verified: "verified"},
		// GET /user/orgs and /user/teams: each organization's login, each
		// team as org/team-slug. Private memberships need read:org.
		groupLists: map[string]groupList{
			"orgs":  {path: "/orgs", name: "login"},
			"teams": {path: "/teams", name: "{organization.login}/{slug}"},
		},
		groupsScope: "read:org",
		revoke: revocation{style: revokeJSON, method: "DELETE", key: "access_token",
			url: "https://api.github.com/applications/{client_id}/grant"},
	},
	"microsoft": {
		display: "Microsoft", linkByEmail: true, oidc: true, issuer: "https://login.microsoftonline.com/{tenant}/v2.0",
		tenantIssuer: true, subjectClaim: "oid", skipUserinfo: true, email: emailMicrosoft,
	},
	"apple": {
		display: "Apple", linkByEmail: true, oidc: true, issuer: "https://appleid.apple.com",
		authURL:    "https://appleid.apple.com/auth/authorize",
		tokenURL:   "https://appleid.apple.com/auth/token",
		jwksURL:    "https://appleid.apple.com/auth/keys",
		scopes:     []string{"name", "email"},
		authParams: map[string]string{"response_mode": "form_post"},
		authStyle:  oauth2.AuthStyleInParams,
		email:      emailApple, userField: true, clientSecretJWT: true,
		revoke: revocation{style: revokeForm, url: "https://appleid.apple.com/auth/revoke"},
	},
	"facebook": {
		display: "Facebook", issuer: "https://www.facebook.com",
		authURL:     "https://www.facebook.com/dialog/oauth",
		tokenURL:    "https://graph.facebook.com/oauth/access_token",
		userinfoURL: "https://graph.facebook.com/me?fields=id,name,email,picture",
		scopes:      []string{"email", "public_profile"},
		authStyle:   oauth2.AuthStyleInParams,
		mapping:     Mapping{ID: "id", Email: "email", Name: "name", Picture: "picture.data.url"},
		email:       emailNever,
		revoke:      revocation{style: revokeBearer, method: "DELETE", url: "https://graph.facebook.com/me/permissions"},
	},
	"x": {
		display: "X", issuer: "https://x.com",
		authURL:     "https://x.com/i/oauth2/authorize",
		tokenURL:    "https://api.x.com/2/oauth2/token",
		userinfoURL: "https://api.x.com/2/users/me?user.fields=profile_image_url",
		scopes:      []string{"tweet.read", "users.read"},
		authStyle:   oauth2.AuthStyleInHeader,
		mapping:     Mapping{ID: "data.id", Name: "data.name", Username: "data.username", Picture: "data.profile_image_url"},
		email:       emailNever,
		revoke:      revocation{style: revokeForm, url: "https://api.x.com/2/oauth2/revoke"},
	},
	"discord": {
		display: "Discord", linkByEmail: true, issuer: "https://discord.com",
		authURL:     "https://discord.com/oauth2/authorize",
		tokenURL:    "https://discord.com/api/oauth2/token",
		userinfoURL: "https://discord.com/api/users/@me",
		scopes:      []string{"identify", "email"},
		authStyle:   oauth2.AuthStyleInHeader,
		mapping: Mapping{ID: "id", Email: "email", EmailVerified: "verified", Name: "global_name", Username: "username",
			Picture: "https://cdn.discordapp.com/avatars/{id}/{avatar}.png"},
		revoke: revocation{style: revokeForm, url: "https://discord.com/api/oauth2/token/revoke"},
	},
	"gitlab": {
		display: "GitLab", linkByEmail: true, oidc: true, issuer: "{base}", base: "https://gitlab.com",
		revoke: revocation{style: revokeForm, url: "{base}/oauth/revoke"},
	},
	"linkedin": {
		display: "LinkedIn", linkByEmail: true, oidc: true, issuer: "https://www.linkedin.com/oauth",
		scopes:    []string{"openid", "profile", "email"},
		authStyle: oauth2.AuthStyleInParams, noPKCE: true, noNonce: true,
	},
	"slack": {
		display: "Slack", linkByEmail: true, oidc: true, issuer: "https://slack.com",
		scopes: []string{"openid", "profile", "email"},
		revoke: revocation{style: revokeBearer, method: "POST", url: "https://slack.com/api/auth.revoke"},
	},
	"notion": {
		display: "Notion", issuer: "https://api.notion.com",
		authURL:    "https://api.notion.com/v1/oauth/authorize",
		tokenURL:   "https://api.notion.com/v1/oauth/token",
		authParams: map[string]string{"owner": "user"},
		headers:    map[string]string{"Notion-Version": "2025-09-03"},
		authStyle:  oauth2.AuthStyleInHeader, tokenJSON: true, noPKCE: true,
		mapping: Mapping{ID: "owner.user.id", Email: "owner.user.person.email", Name: "owner.user.name",
			Picture: "owner.user.avatar_url"},
		profileFromToken: true, email: emailNever,
		revoke: revocation{style: revokeJSON, method: "POST", key: "token", url: "https://api.notion.com/v1/oauth/revoke"},
	},
	"bitbucket": {
		display: "Bitbucket", linkByEmail: true, issuer: "https://bitbucket.org",
		authURL:     "https://bitbucket.org/site/oauth2/authorize",
		tokenURL:    "https://bitbucket.org/site/oauth2/access_token",
		userinfoURL: "https://api.bitbucket.org/2.0/user",
		emailsURL:   "https://api.bitbucket.org/2.0/user/emails",
		scopes:      []string{"account", "email"},
		authStyle:   oauth2.AuthStyleInHeader,
		mapping:     Mapping{ID: "uuid", Name: "display_name", Username: "username", Picture: "links.avatar.href"},
		email:       emailFromList,
		emails:      emailList{list: "values", email: "email", primary: "is_primary", verified: "is_confirmed"},
		scopeKey:    "scopes",
	},
	"twitch": {
		display: "Twitch", linkByEmail: true, oidc: true, issuer: "https://id.twitch.tv/oauth2",
		scopes:        []string{"openid", "user:read:email"},
		authParams:    map[string]string{"claims": twitchClaims},
		authStyle:     oauth2.AuthStyleInParams,
		grantMessages: []string{"Invalid refresh token"},
		revoke: revocation{style: revokeForm, url: "https://id.twitch.tv/oauth2/revoke",
			auth: revokeAuthClientID, accessOnly: true},
	},
	"spotify": {
		display: "Spotify", issuer: "https://accounts.spotify.com",
		authURL:     "https://accounts.spotify.com/authorize",
		tokenURL:    "https://accounts.spotify.com/api/token",
		userinfoURL: "https://api.spotify.com/v1/me",
		scopes:      []string{"user-read-email"},
		authStyle:   oauth2.AuthStyleInHeader,
		mapping:     Mapping{ID: "id", Email: "email", Name: "display_name", Picture: "images.0.url"},
		email:       emailNever,
	},
}

// Kinds lists the provider kinds Config.Kind accepts, sorted: oidc, oauth2
// and every preset.
func Kinds() []string {
	kinds := make([]string, 0, len(presets))
	for k := range presets {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	return kinds
}

// IsPreset reports whether name is a preset's kind (google, github, …)
// rather than a generic one (oidc, oauth2) or another name.
func IsPreset(name string) bool {
	_, ok := presets[name]
	return ok && name != KindOIDC && name != KindOAuth2
}
