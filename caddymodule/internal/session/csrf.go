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

// CheckCSRFAny reports whether one of tokens (a form's csrf_token values)
// was issued for this session (by any key). Each token is decoded once and
// one MAC is computed per key, so a form stuffed with thousands of tokens
// costs comparisons, not thousands of MACs.
func (m *Manager) CheckCSRFAny(sessionID string, tokens []string) bool {
	return m.vouchedFor(sessionID, csrfTokens(tokens))
}

// csrfTokens returns the tokens decoded, leaving out those no key can
// have issued (not base64, not a MAC's length): decoded once per request,
// not once per session cookie.
func csrfTokens(tokens []string) [][]byte {
	out := make([][]byte, 0, len(tokens))
	for _, t := range tokens {
		if got, err := base64.RawURLEncoding.DecodeString(t); err == nil && len(got) == sha256.Size {
			out = append(out, got)
		}
	}
	return out
}

// vouchedFor reports whether one of tokens (csrfTokens) was issued for
// this session (by any key): one MAC per key, however many tokens.
func (m *Manager) vouchedFor(sessionID string, tokens [][]byte) bool {
	if sessionID == "" || len(tokens) == 0 {
		return false
	}
	for _, k := range m.csrfKeys {
		want := csrfMAC(k, sessionID)
		for _, got := range tokens {
			if hmac.Equal(got, want) {
				return true
			}
		}
	}
	return false
}

func csrfMAC(key []byte, sessionID string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("csrf\x00" + sessionID))
	return mac.Sum(nil)
}
