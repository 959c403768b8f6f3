package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// CSRFToken returns the anti-forgery token for forms posted within a session.
func (m *Manager) CSRFToken(sessionID string) string {
	return base64.RawURLEncoding.EncodeToString(csrfMAC(m.csrfKeys[0], sessionID))
}

// CheckCSRF reports whether token was issued for this session (by any key).
func (m *Manager) CheckCSRF(sessionID, token string) bool {
	got, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || sessionID == "" {
		return false
	}
	for _, k := range m.csrfKeys {
		if hmac.Equal(got, csrfMAC(k, sessionID)) {
			return true
		}
	}
	return false
}

// CheckCookieCSRF reports whether token was issued for a session that one
// of the request's session cookies names, live or ended: the sign-out form
// of a session that has ended since still clears its cookie, and a form
// posted from another site (SameSite keeps the cookie from it) clears none.
func (m *Manager) CheckCookieCSRF(r *http.Request, token string) bool {
	for _, id := range m.cookieSessionIDs(r, nil, maxSessionCookies, false) {
		if m.CheckCSRF(id, token) {
			return true
		}
	}
	return false
}

func csrfMAC(key []byte, sessionID string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("csrf\x00" + sessionID))
	return mac.Sum(nil)
}
