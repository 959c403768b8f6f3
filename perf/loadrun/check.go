package main

// Every measured request is checked against what reached the upstream.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// preflight sends one request and checks that it reached the upstream the
// way the row promises.
func preflight(ctx context.Context, r *row, cookie, upstream string) error {
	before, err := readStats(upstream)
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.site.url(), nil)
	req.Header.Set("Cookie", cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != upstreamBody {
		return fmt.Errorf("a signed-in request got %d %q, not the upstream's answer", resp.StatusCode, body)
	}
	after, err := readStats(upstream)
	if err != nil {
		return err
	}
	if problems := check(r, measurement{requests: 1}, after.minus(before), 0); len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// check compares what the client counted with what reached the upstream.
// The upstream may see up to slack more: requests in flight when the client
// stopped counting.
func check(r *row, m measurement, seen upstreamStats, slack int) []string {
	var out []string
	if m.errors > 0 {
		out = append(out, fmt.Sprintf("%d errors or non-2xx/3xx answers", m.errors))
	}
	if seen.Requests < m.requests || seen.Requests > m.requests+int64(slack) {
		out = append(out, fmt.Sprintf("the client counted %d requests, the upstream saw %d", m.requests, seen.Requests))
	}
	gateway := r.site.handler != "" || r.proxy != nil
	if gateway && seen.WithUser != seen.Requests {
		out = append(out, fmt.Sprintf("%d of %d upstream requests lacked X-Auth-User-Id", seen.Requests-seen.WithUser, seen.Requests))
	}
	if strings.Contains(r.site.handler, "forward_token") && seen.WithToken != seen.Requests {
		out = append(out, fmt.Sprintf("%d of %d upstream requests lacked X-Auth-Token-Dev", seen.Requests-seen.WithToken, seen.Requests))
	}
	if gateway && seen.WithCookie > 0 {
		out = append(out, fmt.Sprintf("%d upstream requests carried the gateway's cookie", seen.WithCookie))
	}
	return out
}
