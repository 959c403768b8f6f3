package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
)

// maxBody bounds a request's body: room for a user's three metadata
// objects at their limit of 8 KB each, and the rest.
const maxBody = 64 << 10

// readJSON reads the body of a POST, PATCH or PUT into dst, a struct of
// the parameters the route takes. No body at all, or a JSON null (what
// Clerk's SDKs send to routes without parameters), leaves dst as it is.
// Anything else must be one JSON object sent as application/json, of at
// most maxBody bytes, with no parameter dst does not know: each mistake is
// answered here, in Clerk's error shape, and readJSON returns false.
func readJSON(w http.ResponseWriter, r *http.Request, dst any) bool {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, http.StatusRequestEntityTooLarge, "request_body_too_large", "The body is larger than 64 KB.")
		return false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_body", "The body could not be read.")
		return false
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || string(body) == "null" {
		return true
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_content_type",
			"The body must be JSON, sent with Content-Type: application/json.")
		return false
	}
	if body[0] != '{' {
		writeError(w, http.StatusBadRequest, "invalid_request_body", "The body must be a JSON object of parameters.")
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return true
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		writeErrorMeta(w, http.StatusUnprocessableEntity, "form_param_unknown",
			"socialgate does not support the parameter "+field+" here (see docs/clerk.md).", map[string]any{"param_name": field})
	case errors.As(err, &typeErr) && typeErr.Field != "":
		writeErrorMeta(w, http.StatusUnprocessableEntity, "form_param_format_invalid",
			typeErr.Field+" cannot be a JSON "+typeErr.Value+".", map[string]any{"param_name": typeErr.Field})
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_body", "The body is not valid JSON: "+strings.TrimPrefix(err.Error(), "json: ")+".")
	}
	return false
}
