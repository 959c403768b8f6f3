package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// decodeInto re-decodes a generic JSON object into a struct.
func decodeInto(m map[string]any, v any) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// lookup follows a dotted path ("data.user.id", "images.0.url") into a JSON
// document; a number indexes an array.
func lookup(m map[string]any, path string) (any, bool) {
	if path == "" {
		return nil, false
	}
	var cur any = m
	for _, part := range strings.Split(path, ".") {
		switch node := cur.(type) {
		case map[string]any:
			v, ok := node[part]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(node) {
				return nil, false
			}
			cur = node[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// lookupString returns a string or number at path as a string; anything else
// is "". A path with braces is a template (see Mapping).
func lookupString(m map[string]any, path string) string {
	if strings.Contains(path, "{") {
		return expandTemplate(m, path)
	}
	v, _ := lookup(m, path)
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return ""
}

// expandTemplate replaces each {path} of tmpl by that field; it returns ""
// when a field is missing or empty, so no half-built URL comes out.
func expandTemplate(m map[string]any, tmpl string) string {
	var b strings.Builder
	for {
		before, rest, ok := strings.Cut(tmpl, "{")
		b.WriteString(before)
		if !ok {
			return b.String()
		}
		path, after, ok := strings.Cut(rest, "}")
		if !ok {
			return ""
		}
		v := lookupString(m, path)
		if v == "" {
			return ""
		}
		b.WriteString(url.PathEscape(v))
		tmpl = after
	}
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
	// A time beyond year 9999 (or before 1970) is no time: converting it to
	// int64 could overflow into the past and pass "not in the future" checks.
	if f < 0 || f > 253402300799 {
		return fmt.Errorf("time out of range: %s", data)
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
