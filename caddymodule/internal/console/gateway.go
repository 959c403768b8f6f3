package console

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/socialgate/socialgate/caddymodule/internal/i18n"
	"github.com/socialgate/socialgate/caddymodule/internal/ops"
	"github.com/socialgate/socialgate/caddymodule/internal/ui"
)

// providerCheck bounds how long the gateway page waits for the providers.
const providerCheck = 3 * time.Second

// maxBacklog is where the gateway page stops counting a webhook's backlog.
const maxBacklog = 1000

// chartDays is how many days the sign-in chart shows.
const chartDays = 14

// gatewayPage shows the providers and whether each answers now, the webhook
// endpoints' delivery state, the native redirect URLs, the sign-ins of the
// last days and the active sessions.
func (c *Console) gatewayPage(w http.ResponseWriter, r *http.Request, page string, op operator, g Guard) {
	c.showGateway(w, r, op, g, http.StatusOK, "", i18n.Message{})
}

// showGateway renders the gateway page with status; problem, when set, is
// why the redirect URL input was refused.
func (c *Console) showGateway(w http.ResponseWriter, r *http.Request, op operator, g Guard, status int, input string, problem i18n.Message) {
	view := &ui.ConsoleGateway{RedirectURLInput: input, RedirectURLError: problem}
	ctx, cancel := context.WithTimeout(op.ctx, providerCheck)
	defer cancel()
	for _, p := range c.Ops.Providers(ctx) {
		row := ui.ConsoleProvider{Name: p.Name, DisplayName: p.DisplayName, SignIn: p.SignIn, Up: p.Unreachable == nil}
		if p.Unreachable != nil {
			row.Problem = p.Unreachable.Error()
		}
		view.Providers = append(view.Providers, row)
	}
	hooks, err := c.Ops.Webhooks(op.ctx)
	if err != nil {
		c.internal(w, r, "reading webhooks", err)
		return
	}
	for _, h := range hooks {
		n, more, err := c.Ops.Backlog(op.ctx, h.Cursor, maxBacklog)
		if err != nil {
			c.internal(w, r, "reading a webhook backlog", err)
			return
		}
		backlog := strconv.Itoa(n)
		if more {
			backlog += "+"
		}
		view.Webhooks = append(view.Webhooks, ui.ConsoleWebhook{Name: h.Name, URL: h.URL, Backlog: backlog,
			LastDelivered: when(h.LastSuccessAt), LastError: h.LastError})
	}
	urls, _, err := c.Ops.RedirectURLs(op.ctx, ops.Page{Limit: ops.MaxLimit})
	if err != nil {
		c.internal(w, r, "reading redirect URLs", err)
		return
	}
	for _, u := range urls {
		view.RedirectURLs = append(view.RedirectURLs, ui.ConsoleRedirectURL{ID: u.ID, URL: u.URL})
	}
	now := time.Now()
	counts, complete, err := c.Ops.SignInsPerDay(op.ctx, chartDays, now)
	if err != nil {
		c.internal(w, r, "reading sign-ins", err)
		return
	}
	view.Chart = barChart(counts, now, !complete)
	if view.ActiveSessions, err = c.Ops.ActiveSessions(op.ctx); err != nil {
		c.internal(w, r, "counting sessions", err)
		return
	}
	pg := c.view(r, op, g, i18n.M("console.gateway"), "gateway", c.base+"/gateway")
	pg.Console.Gateway = view
	c.render(w, r, status, "console-gateway", pg)
}

// barChart lays out one bar per day, the last one today.
func barChart(counts []int, now time.Time, partial bool) *ui.Chart {
	const width, height, labels, bar = 560, 160, 16, 40
	ch := &ui.Chart{Width: width, Height: height, Baseline: height - labels, Partial: partial}
	for _, n := range counts {
		ch.Max = max(ch.Max, n)
	}
	total := 0
	step := width / len(counts)
	first := now.UTC().AddDate(0, 0, 1-len(counts))
	for i, n := range counts {
		h := 0
		if ch.Max > 0 {
			h = n * (ch.Baseline - 4) / ch.Max
		}
		day := first.AddDate(0, 0, i).Format("01-02")
		ch.Bars = append(ch.Bars, ui.ChartBar{Label: day, Count: n, X: i*step + (step-min(bar, step-4))/2, Y: ch.Baseline - h,
			W: min(bar, step-4), H: h, LabelX: i*step + step/2, ShowLabel: i%2 == len(counts)%2})
		total += n
	}
	ch.Total = total
	return ch
}

// gatewayAction carries out a POST /gateway/…: adding or removing a native
// redirect URL, replaying a webhook endpoint's events.
func (c *Console) gatewayAction(w http.ResponseWriter, r *http.Request, page string, op operator, g Guard) {
	var err error
	var notice string
	switch strings.TrimPrefix(page, "/gateway/") {
	case "redirect-urls/add":
		input := strings.TrimSpace(r.PostFormValue("url"))
		_, err = c.Ops.CreateRedirectURL(op.ctx, input)
		if pe := (*ops.ParamError)(nil); errors.As(err, &pe) {
			c.showGateway(w, r, op, g, http.StatusUnprocessableEntity, input, i18n.M("console.redirect_refused", "reason", pe.Message))
			return
		}
		notice = "redirect_added"
	case "redirect-urls/delete":
		err = c.Ops.DeleteRedirectURL(op.ctx, r.PostFormValue("id"))
		notice = "redirect_removed"
	case "webhooks/replay":
		hours, perr := strconv.Atoi(strings.TrimSpace(r.PostFormValue("hours")))
		if perr != nil || hours < 0 {
			c.fail(w, r, http.StatusUnprocessableEntity, i18n.M("console.replay_hours"))
			return
		}
		since := time.Now().Add(-time.Duration(hours) * time.Hour)
		_, err = c.Ops.ReplayWebhook(op.ctx, r.PostFormValue("endpoint"), ops.ReplayStart{Since: &since})
		var nr *ops.NotRetainedError
		var pe *ops.ParamError
		if errors.As(err, &nr) || errors.As(err, &pe) {
			c.fail(w, r, http.StatusUnprocessableEntity, i18n.M("console.replay_refused", "reason", err.Error()))
			return
		}
		notice = "replay"
	default:
		c.fail(w, r, http.StatusNotFound, i18n.M("console.not_found"))
		return
	}
	switch {
	case errors.Is(err, ops.ErrNotFound):
		c.fail(w, r, http.StatusNotFound, i18n.M("console.gone"))
	case err != nil:
		c.internal(w, r, "console gateway action", err)
	default:
		http.Redirect(w, r, c.base+"/gateway?notice="+notice, http.StatusSeeOther)
	}
}
