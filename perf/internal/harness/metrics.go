package harness

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
)

// Metrics is one scrape of a Prometheus text endpoint (Caddy's admin
// /metrics, or a `metrics` handler).
type Metrics []byte

// Scrape reads the metrics at url.
func Scrape(url string) (Metrics, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}

// Value is the sample of one series, written exactly as the endpoint
// writes it (`name{label="v",…}`, labels in its order); zero and false
// when the series does not exist (a counter that has not counted yet).
func (m Metrics) Value(series string) (float64, bool) {
	match := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(m)
	if match == nil {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(match[1]), 64)
	return v, err == nil
}
