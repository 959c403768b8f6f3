package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Limits on every outbound call to a provider.
const (
	// Timeout bounds a whole outbound request, body included.
	Timeout = 10 * time.Second
	// MaxBody bounds how much of a provider's response is read.
	MaxBody = 1 << 20
)

// errBodyTooLarge is returned by reads past MaxBody.
var errBodyTooLarge = errors.New("response body exceeds 1 MiB")

// sharedTransport pools connections to providers for the whole process:
// configs come and go with reloads, their clients share these connections
// instead of leaving idle ones behind each time.
var sharedTransport = func() http.RoundTripper {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = Timeout
	base.IdleConnTimeout = 30 * time.Second
	return limitTransport{base}
}()

// NewHTTPClient returns the client used for provider calls: bounded in time
// and in the size of every response body it reads.
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout:   Timeout,
		Transport: sharedTransport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return http.ErrUseLastResponse // back-channel calls never follow redirects
		},
	}
}

// timeoutOf is the client's timeout, or Timeout for a client without one.
func timeoutOf(c *http.Client) time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return Timeout
}

// limitTransport caps every response body at MaxBody bytes.
type limitTransport struct{ next http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: MaxBody}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe one byte: a body of exactly MaxBody is fine.
		var one [1]byte
		if n, _ := b.rc.Read(one[:]); n > 0 {
			return 0, errBodyTooLarge
		}
		return 0, io.EOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }

// do sends req with the provider's headers and reads the answer, bounded in
// time and size whatever client was configured.
func (p *Provider) do(req *http.Request) (int, []byte, http.Header, error) {
	ctx, cancel := context.WithTimeout(req.Context(), timeoutOf(p.client))
	defer cancel()
	req = req.WithContext(ctx)
	for k, v := range p.pre.headers {
		req.Header.Set(k, v)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err == nil && len(body) > MaxBody {
		err = errBodyTooLarge
	}
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, body, resp.Header, nil
}

// fetch GETs a JSON document with the access token (userinfo, emails).
// Numbers decode as json.Number, so long ids keep their digits.
func (p *Provider) fetch(ctx context.Context, url, accessToken, what string) (any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	req.Header.Set("Accept", "application/json")
	status, body, _, err := p.do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, what, err)
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("%w: %s answered HTTP %d", ErrUnavailable, what, status)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out any
	if err := dec.Decode(&out); err != nil || out == nil {
		return nil, fmt.Errorf("%w: %s is not JSON", ErrUnavailable, what)
	}
	return out, nil
}

// fetchObject is fetch for a document that must be a JSON object.
func (p *Provider) fetchObject(ctx context.Context, url, accessToken, what string) (map[string]any, error) {
	v, err := p.fetch(ctx, url, accessToken, what)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not a JSON object", ErrUnavailable, what)
	}
	return obj, nil
}
