package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/oauth2"
)

// fetchJSON GETs a JSON object with the access token (userinfo).
func (p *Provider) fetchJSON(ctx context.Context, url string, tok *oauth2.Token) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: %v", ErrUnavailable, err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: userinfo: %v", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: userinfo answered HTTP %d", ErrUnavailable, resp.StatusCode)
	}
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil || out == nil {
		return nil, fmt.Errorf("%w: userinfo is not a JSON object", ErrUnavailable)
	}
	return out, nil
}

// decodeInto re-decodes a generic JSON object into a struct.
func decodeInto(m map[string]any, v any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// lookup follows a dotted path ("data.user.id") into a JSON object.
func lookup(m map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// lookupString returns a string or number at path as a string; anything else is "".
func lookupString(m map[string]any, path string) string {
	v, _ := lookup(m, path)
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	}
	return ""
}

// lookupBool accepts true and "true" (some providers send booleans as strings).
func lookupBool(m map[string]any, path string) bool {
	v, _ := lookup(m, path)
	switch v := v.(type) {
	case bool:
		return v
	case string:
		b, _ := strconv.ParseBool(v)
		return b
	}
	return false
}

// flexBool decodes true, false, "true" and "false"; set records presence.
type flexBool struct{ value, set bool }

func (b *flexBool) UnmarshalJSON(data []byte) error {
	switch string(bytes.ToLower(data)) {
	case "true", `"true"`:
		*b = flexBool{value: true, set: true}
	case "false", `"false"`:
		*b = flexBool{value: false, set: true}
	case "null":
	default:
		return fmt.Errorf("email_verified is neither a boolean nor \"true\"/\"false\"")
	}
	return nil
}

// flexInt64 decodes a JSON number (possibly with a fraction) as seconds.
type flexInt64 int64

func (n *flexInt64) UnmarshalJSON(data []byte) error {
	f, err := strconv.ParseFloat(string(data), 64)
	if err != nil {
		return fmt.Errorf("not a number: %s", data)
	}
	*n = flexInt64(f)
	return nil
}

// audience decodes aud as a string or a list of strings.
type audience []string

func (a *audience) UnmarshalJSON(data []byte) error {
	var s string
	if json.Unmarshal(data, &s) == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("aud is neither a string nor a list of strings")
	}
	*a = l
	return nil
}
