package provider

import (
	"errors"
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

// NewHTTPClient returns the client used for provider calls: bounded in time
// and in the size of every response body it reads.
func NewHTTPClient() *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.ResponseHeaderTimeout = Timeout
	return &http.Client{
		Timeout:   Timeout,
		Transport: limitTransport{base},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			return http.ErrUseLastResponse // back-channel calls never follow redirects
		},
	}
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
