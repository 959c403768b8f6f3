package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// ErrUnreachable means no admin API answered at the address.
var ErrUnreachable = errors.New("the admin API does not answer")

// StatusError is an error answer of the routes.
type StatusError struct {
	// Status is the HTTP status; 0 when the answer was not from socialgate's
	// routes (another server, a Caddy without them).
	Status  int
	Message string
	// Store is the store the route read; "" when it read none (it could
	// not pick one, or there is no such route).
	Store string
}

// Missing reports that the record asked for does not exist in the store.
func (e *StatusError) Missing() bool { return e.Status == http.StatusNotFound && e.Store != "" }

func (e *StatusError) Error() string { return e.Message }

// Doer sends a request to the routes: method and uri (/socialgate/…?…).
// An error is ErrUnreachable when nothing answered.
type Doer func(ctx context.Context, method, uri string) (*http.Response, error)

// Client calls the routes, of a running gateway or of this process (Local).
type Client struct {
	do Doer
	// Storage, when set, names the store (?storage=): a Badger directory.
	Storage string
	// Store is the store the last answer came from (its Name), "" before.
	Store string
}

// NewClient returns a client that sends its requests with do.
func NewClient(do Doer) *Client { return &Client{do: do} }

// User is the backend API's user object, as the commands read it.
type User struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	PrimaryEmail string `json:"primary_email_address"`
	Emails       []struct {
		Address      string `json:"email_address"`
		Verification struct {
			Status string `json:"status"`
		} `json:"verification"`
	} `json:"email_addresses"`
	Accounts     []Account `json:"external_accounts"`
	CreatedAt    int64     `json:"created_at"`
	LastSignInAt int64     `json:"last_sign_in_at"`
	// JSON is the object as it was sent.
	JSON json.RawMessage `json:"-"`
}

// Account is an external account object with its issuer.
type Account struct {
	ID            string `json:"id"`
	Provider      string `json:"provider_name"`
	Issuer        string `json:"issuer"`
	Subject       string `json:"provider_user_id"`
	Email         string `json:"email_address"`
	EmailVerified bool   `json:"email_verified"`
	Verification  struct {
		Status string `json:"status"`
	} `json:"verification"`
	CreatedAt int64 `json:"created_at"`
}

// Session is a session object.
type Session struct {
	ID        string `json:"id"`
	UserID    string `json:"user_id"`
	CreatedAt int64  `json:"created_at"`
	ExpireAt  int64  `json:"expire_at"`
	IP        string `json:"ip_address"`
	UserAgent string `json:"user_agent"`
}

// UserPage is a page of users and how many match.
type UserPage struct {
	Users []User
	Total int
}

// Users lists users, newest first (GET /socialgate/users).
func (c *Client) Users(ctx context.Context, email string, limit, offset int) (UserPage, error) {
	q := url.Values{"limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	if email != "" {
		q.Set("email", email)
	}
	var out struct {
		Data  []json.RawMessage `json:"data"`
		Total int               `json:"total_count"`
	}
	if err := c.call(ctx, http.MethodGet, "/users", q, &out); err != nil {
		return UserPage{}, err
	}
	page := UserPage{Total: out.Total}
	for _, raw := range out.Data {
		u, err := decodeUser(raw)
		if err != nil {
			return UserPage{}, err
		}
		page.Users = append(page.Users, u)
	}
	return page, nil
}

// UserDetail is a user with its live sessions.
type UserDetail struct {
	User     User
	Sessions []Session
	// JSON is the answer as it was sent: {user, sessions}.
	JSON json.RawMessage
}

// User returns a user with its accounts and live sessions.
func (c *Client) User(ctx context.Context, id string) (UserDetail, error) {
	var raw json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/users/"+url.PathEscape(id), nil, &raw); err != nil {
		return UserDetail{}, err
	}
	var out struct {
		User     json.RawMessage `json:"user"`
		Sessions []Session       `json:"sessions"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return UserDetail{}, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	u, err := decodeUser(out.User)
	return UserDetail{User: u, Sessions: out.Sessions, JSON: raw}, err
}

func decodeUser(raw json.RawMessage) (User, error) {
	u := User{JSON: raw}
	if err := json.Unmarshal(raw, &u); err != nil {
		return u, fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return u, nil
}

// DeleteUser deletes a user with its accounts and sessions.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/users/"+url.PathEscape(id), nil, nil)
}

// DisconnectAccount unlinks an external account from its user.
func (c *Client) DisconnectAccount(ctx context.Context, userID, id string) error {
	return c.call(ctx, http.MethodDelete, "/users/"+url.PathEscape(userID)+"/external_accounts/"+url.PathEscape(id), nil, nil)
}

// RevokeSession ends a session and returns it.
func (c *Client) RevokeSession(ctx context.Context, id string) (Session, error) {
	var s Session
	err := c.call(ctx, http.MethodPost, "/sessions/"+url.PathEscape(id)+"/revoke", nil, &s)
	return s, err
}

// ReplayWebhook replays an endpoint's events from since, or from the event
// eventID, and returns where the replay starts.
func (c *Client) ReplayWebhook(ctx context.Context, name string, since time.Time, eventID string) (time.Time, error) {
	q := url.Values{}
	if eventID != "" {
		q.Set("event_id", eventID)
	} else {
		q.Set("since", strconv.FormatInt(since.UnixMilli(), 10))
	}
	var out struct {
		Since int64 `json:"since"`
	}
	err := c.call(ctx, http.MethodPost, "/webhooks/"+url.PathEscape(name)+"/replay", q, &out)
	return time.UnixMilli(out.Since), err
}

// Rotation is the outcome of an identity-key rotation.
type Rotation struct {
	NewKey    string `json:"new_key"`
	Published bool   `json:"published"`
	SignsFrom int64  `json:"signs_from"`
}

// RotateIdentityKey makes a new identity-token key.
func (c *Client) RotateIdentityKey(ctx context.Context) (Rotation, error) {
	var out Rotation
	err := c.call(ctx, http.MethodPost, "/identity-keys/rotate", nil, &out)
	return out, err
}

// Report is the outcome of the store's check.
type Report struct {
	Violations []string `json:"violations"`
	Users      int      `json:"users"`
}

// Check checks the store's invariants.
func (c *Client) Check(ctx context.Context) (Report, error) {
	var out Report
	err := c.call(ctx, http.MethodGet, "/check", nil, &out)
	return out, err
}

// Backup writes a backup of a Badger store to w.
func (c *Client) Backup(ctx context.Context, w io.Writer) error {
	resp, err := c.send(ctx, http.MethodGet, "/backup", nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return fmt.Errorf("receiving the backup: %w", err)
	}
	return nil
}

// call sends a request and decodes the JSON answer into out (nil: drop it).
func (c *Client) call(ctx context.Context, method, path string, q url.Values, out any) error {
	resp, err := c.send(ctx, method, path, q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the admin API's answer: %w", err)
	}
	return nil
}

// send sends method /socialgate<path>?q and returns a successful answer;
// an error answer is a *StatusError.
func (c *Client) send(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	if q == nil {
		q = url.Values{}
	}
	if c.Storage != "" {
		q.Set("storage", c.Storage)
	}
	uri := "/socialgate" + path
	if len(q) > 0 {
		uri += "?" + q.Encode()
	}
	resp, err := c.do(ctx, method, uri)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode < 400 {
		c.Store = resp.Header.Get(StoreHeader)
		return resp, nil
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
		Store string `json:"store"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body) != nil || body.Error == "" {
		// Not socialgate's admin routes: a Caddy without them, or not Caddy.
		return nil, &StatusError{Message: fmt.Sprintf("the admin API has no socialgate routes (HTTP %d): is it this gateway?", resp.StatusCode)}
	}
	if body.Store != "" {
		c.Store = body.Store
	}
	return nil, &StatusError{Status: resp.StatusCode, Message: body.Error, Store: body.Store}
}
