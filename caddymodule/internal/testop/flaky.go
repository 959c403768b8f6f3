package testop

import (
	"encoding/json"
	"math/rand/v2"
	"net/url"
	"time"
)

// HintClaims are the claims of the user a login_hint chooses under
// UsersByLoginHint: sub is the hint, email is hint@testop.example
// (verified) and name is the hint.
func HintClaims(hint string) map[string]any {
	return map[string]any{
		"sub":            hint,
		"email":          hint + "@testop.example",
		"email_verified": true,
		"name":           hint,
	}
}

// Injection is one token-endpoint call that TokenFaultRate made misbehave.
type Injection struct {
	At    time.Time `json:"at"`    // when the call arrived
	Fault Fault     `json:"fault"` // what it got
	// Grant is the call's grant_type: "authorization_code" or
	// "refresh_token".
	Grant string `json:"grant"`
	// Subject is the sub of the user the code or refresh token stands for;
	// empty when the provider does not know it (an unknown or used code).
	Subject string `json:"subject"`
}

// MarshalText writes a fault by its name, so Injection encodes readably.
func (f Fault) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// Injected returns a copy of every injection so far, oldest first.
func (s *Server) Injected() []Injection {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Injection(nil), s.injected...)
}

// drawTokenFault draws the fault of one token-endpoint call under
// TokenFaultRate: FaultNone for most.
func (s *Server) drawTokenFault() Fault {
	if s.faultRate <= 0 || rand.Float64() >= s.faultRate {
		return FaultNone
	}
	return s.tokenFaults[rand.IntN(len(s.tokenFaults))]
}

// recordInjection notes an injected fault with the user the call's code or
// refresh token stands for, which it does not consume.
func (s *Server) recordInjection(at time.Time, f Fault, form url.Values) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var g grant
	switch form.Get("grant_type") {
	case "authorization_code":
		g = s.codes[form.Get("code")]
	case "refresh_token":
		g = s.refreshTokens[form.Get("refresh_token")]
	}
	claims := g.claims
	if claims == nil && g.redirectURI != "" {
		claims = s.claims
	}
	var who struct {
		Sub any `json:"sub"`
	}
	json.Unmarshal(claims, &who)
	sub, _ := who.Sub.(string)
	s.injected = append(s.injected, Injection{At: at, Fault: f, Grant: form.Get("grant_type"), Subject: sub})
}
