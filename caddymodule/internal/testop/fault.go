package testop

import (
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"time"
)

// Fault is one way for the provider to misbehave. Each changes exactly one
// thing from a correct response; the others stay correct.
type Fault int

const (
	// FaultNone: every response is correct.
	FaultNone Fault = iota

	// ID-token faults, in OIDC mode, on every id_token issued.

	// FaultAlgNone: header alg "none" and an empty signature.
	FaultAlgNone
	// FaultHS256WithPublicKey: header alg "HS256" (kid unchanged), an HMAC
	// whose secret is the PEM ("PUBLIC KEY", PKIX) encoding of the RSA public
	// key in the JWKS: the algorithm-confusion attack.
	FaultHS256WithPublicKey
	// FaultWrongAudience: aud is "other-client".
	FaultWrongAudience
	// FaultExtraAudienceNoAzp: aud is [client id, "other-client"], no azp.
	FaultExtraAudienceNoAzp
	// FaultWrongAzp: aud is the client id, azp is "other-client".
	FaultWrongAzp
	// FaultWrongIssuer: iss is "https://other.example".
	FaultWrongIssuer
	// FaultIssuerTrailingSlash: iss is URL() + "/".
	FaultIssuerTrailingSlash
	// FaultIssuerCase: iss is URL() upper-cased. The host is an IP literal, so
	// only the scheme changes: "HTTP://127.0.0.1:port".
	FaultIssuerCase
	// FaultWrongNonce: nonce is "wrong-" + the nonce of the authorization request.
	FaultWrongNonce
	// FaultMissingNonce: no nonce, though the authorization request sent one.
	FaultMissingNonce
	// FaultMissingIat: no iat.
	FaultMissingIat
	// FaultMissingSub: no sub.
	FaultMissingSub
	// FaultExpired: exp is an hour in the past.
	FaultExpired
	// FaultUnknownKid: signed with a second RSA key whose kid is not in the JWKS.
	FaultUnknownKid

	// Other faults.

	// FaultUserinfoSubMismatch: in OIDC mode, userinfo's sub is "other-" + the
	// id_token's sub. No effect in OAuth2 mode, whose userinfo has no sub.
	FaultUserinfoSubMismatch
	// FaultTokenError: the token endpoint answers 400 {"error":"invalid_grant"}
	// to an authenticated client, without consuming the code or refresh token.
	FaultTokenError
	// FaultTokenHTML: the token endpoint answers 200 with an HTML page, as
	// above.
	FaultTokenHTML
	// FaultTokenHuge: the token endpoint answers 200 with a syntactically valid
	// JSON body whose access_token is 10 MiB long, as above, so a client that
	// does not bound its reads succeeds.
	FaultTokenHuge
	// FaultSlow: the token and userinfo endpoints wait 3 s before answering
	// (less if the client gives up).
	FaultSlow
	// FaultWrongIssParam: the authorization response carries
	// iss=https://other.example (RFC 9207 mix-up), in both modes.
	FaultWrongIssParam
	// FaultJWKSUnavailable: in OIDC mode, the JWKS endpoint answers 503, as
	// during a provider's outage; id_tokens are still signed as before.
	FaultJWKSUnavailable
	// FaultStaleAuthTime: prompt=login and max_age are ignored: the person
	// is not asked to sign in again, and the id_token's auth_time is their
	// earlier sign-in (SetLoginTime; an hour ago when none was set).
	FaultStaleAuthTime
	// FaultTokenServerError: the token endpoint answers 500 with a plain text
	// body, without consuming the code or refresh token: a provider that is
	// down behind its load balancer.
	FaultTokenServerError
	// FaultTokenHang: the token endpoint never answers, consuming nothing:
	// it waits until the client gives up, the test ends, or SetFault
	// changes the fault (it then drops the connection).
	FaultTokenHang
	// FaultTokenLostAnswer: the token endpoint grants the request (a refresh
	// rotates the refresh token, a code is consumed) and then never sends
	// the answer, as when a connection breaks after the provider committed:
	// only Options.RefreshReuseGrace can save the grant.
	FaultTokenLostAnswer
	// FaultTokenInvalidClient: the token endpoint answers 401
	// {"error":"invalid_client"}, as to a client secret it does not take,
	// with an error_description that echoes the code or refresh token sent
	// (as some providers' do), consuming nothing.
	FaultTokenInvalidClient
)

var faultNames = [...]string{
	FaultNone:                "FaultNone",
	FaultAlgNone:             "FaultAlgNone",
	FaultHS256WithPublicKey:  "FaultHS256WithPublicKey",
	FaultWrongAudience:       "FaultWrongAudience",
	FaultExtraAudienceNoAzp:  "FaultExtraAudienceNoAzp",
	FaultWrongAzp:            "FaultWrongAzp",
	FaultWrongIssuer:         "FaultWrongIssuer",
	FaultIssuerTrailingSlash: "FaultIssuerTrailingSlash",
	FaultIssuerCase:          "FaultIssuerCase",
	FaultWrongNonce:          "FaultWrongNonce",
	FaultMissingNonce:        "FaultMissingNonce",
	FaultMissingIat:          "FaultMissingIat",
	FaultMissingSub:          "FaultMissingSub",
	FaultExpired:             "FaultExpired",
	FaultUnknownKid:          "FaultUnknownKid",
	FaultUserinfoSubMismatch: "FaultUserinfoSubMismatch",
	FaultTokenError:          "FaultTokenError",
	FaultTokenHTML:           "FaultTokenHTML",
	FaultTokenHuge:           "FaultTokenHuge",
	FaultSlow:                "FaultSlow",
	FaultWrongIssParam:       "FaultWrongIssParam",
	FaultJWKSUnavailable:     "FaultJWKSUnavailable",
	FaultStaleAuthTime:       "FaultStaleAuthTime",
	FaultTokenServerError:    "FaultTokenServerError",
	FaultTokenHang:           "FaultTokenHang",
	FaultTokenLostAnswer:     "FaultTokenLostAnswer",
	FaultTokenInvalidClient:  "FaultTokenInvalidClient",
}

func (f Fault) String() string {
	if f >= 0 && int(f) < len(faultNames) {
		return faultNames[f]
	}
	return fmt.Sprintf("Fault(%d)", int(f))
}

// Values the faults put where the right ones belong.
const (
	otherIssuer = "https://other.example"
	otherClient = "other-client"
)

const (
	idTokenLifetime = time.Hour
	slowDelay       = 3 * time.Second
	hugeBodySize    = 10 << 20
)

// idToken builds the id_token for a grant, broken as f says. A nonce of ""
// means the authorization request sent none (or this is a refresh); a zero
// authTime means no auth_time claim. sid is the provider's session of the
// grant ("": none).
func (s *Server) idToken(claimsJSON []byte, audience, nonce string, authTime time.Time, sid string, f Fault, now time.Time) string {
	claims := decodeObject(claimsJSON)
	for _, name := range s.userinfoOnly {
		delete(claims, name)
	}
	claims["iss"] = s.URL()
	claims["aud"] = audience
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(idTokenLifetime).Unix()
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if !authTime.IsZero() {
		claims["auth_time"] = authTime.Unix()
	}
	if sid != "" {
		claims["sid"] = sid
	}
	kid, key := s.signingKey()
	header := map[string]string{"alg": "RS256", "kid": kid, "typ": "JWT"}

	switch f {
	case FaultAlgNone:
		header["alg"] = "none"
	case FaultHS256WithPublicKey:
		header["alg"] = "HS256"
	case FaultWrongAudience:
		claims["aud"] = otherClient
	case FaultExtraAudienceNoAzp:
		claims["aud"] = []string{audience, otherClient}
	case FaultWrongAzp:
		claims["azp"] = otherClient
	case FaultWrongIssuer:
		claims["iss"] = otherIssuer
	case FaultIssuerTrailingSlash:
		claims["iss"] = s.URL() + "/"
	case FaultIssuerCase:
		claims["iss"] = strings.ToUpper(s.URL())
	case FaultWrongNonce:
		claims["nonce"] = "wrong-" + nonce
	case FaultMissingNonce:
		delete(claims, "nonce")
	case FaultMissingIat:
		delete(claims, "iat")
	case FaultMissingSub:
		delete(claims, "sub")
	case FaultExpired:
		claims["exp"] = now.Add(-time.Hour).Unix()
	case FaultUnknownKid:
		header["kid"] = "unknown-" + kid
		key = s.strayKey()
	}

	signingInput := b64(mustJSON(header)) + "." + b64(mustJSON(claims))
	return signingInput + "." + b64(sign(header["alg"], signingInput, key))
}

// sign is done by hand rather than with go-jose, which refuses to produce
// the broken tokens this package exists for.
func sign(alg, signingInput string, key *rsa.PrivateKey) []byte {
	digest := sha256.Sum256([]byte(signingInput))
	switch alg {
	case "none":
		return nil
	case "HS256":
		mac := hmac.New(sha256.New, publicKeyPEM(&key.PublicKey))
		mac.Write([]byte(signingInput))
		return mac.Sum(nil)
	default: // RS256
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
		if err != nil {
			panic("testop: signing an id_token: " + err.Error())
		}
		return sig
	}
}

// publicKeyPEM is the PEM ("PUBLIC KEY", PKIX) encoding of pub: the HMAC
// secret FaultHS256WithPublicKey uses with the JWKS key.
func publicKeyPEM(pub *rsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic("testop: encoding an RSA public key: " + err.Error())
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
