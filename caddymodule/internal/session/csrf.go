package session

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
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

func csrfMAC(key []byte, sessionID string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("csrf\x00" + sessionID))
	return mac.Sum(nil)
}
