package main

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callpop/callpop/internal/guard"
)

// refusals counts every request the node refuses, by endpoint and reason,
// and logs the widget-facing ones (a token, a ticket, an origin) at info: a
// CRM whose widget shows "token refused" should find why in the log. The log
// is sampled, so a flood of refusals costs a few lines a second; it names the
// reason, the client's address and the page's origin, never a token.
type refusals struct {
	total   *prometheus.CounterVec
	log     *zap.Logger
	trusted func(r *http.Request) string
}

// refusalLogBurst is how many refusal lines of one reason a second are
// logged; the rest are counted only.
const refusalLogBurst = 5

func newRefusals(reg prometheus.Registerer, log *zap.Logger, cfg *config) *refusals {
	total := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "callpop_requests_refused_total",
		Help: "Requests refused, by endpoint (webhook, ws, api) and reason (network, rate, auth, token, ticket, origin).",
	}, []string{"endpoint", "reason"})
	reg.MustRegister(total)
	// Known series from the start, so rate() and absent() alerts work
	// before the first refusal.
	for _, er := range [][2]string{
		{"webhook", "network"}, {"webhook", "rate"}, {"webhook", "auth"},
		{"ws", "rate"}, {"ws", "token"}, {"ws", "ticket"}, {"ws", "origin"},
		{"api", "token"}, {"api", "origin"},
	} {
		total.WithLabelValues(er[0], er[1])
	}
	sampled := log.Named("refused").WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, refusalLogBurst, 0)
	}))
	return &refusals{total: total, log: sampled, trusted: func(r *http.Request) string {
		return guard.ClientIP(r, cfg.trusted).String()
	}}
}

// counter returns a guard's OnRefuse for endpoint: counted, not logged (the
// guards refuse floods, which the sampled log would only echo).
func (f *refusals) counter(endpoint string) func(string) {
	return func(reason string) { f.total.WithLabelValues(endpoint, reason).Inc() }
}

// request counts and logs a refused request of endpoint.
func (f *refusals) request(endpoint string) func(r *http.Request, reason string) {
	return func(r *http.Request, reason string) {
		f.total.WithLabelValues(endpoint, reason).Inc()
		f.log.Info("request refused", zap.String("endpoint", endpoint), zap.String("reason", reason),
			zap.String("client", f.trusted(r)), zap.String("origin", r.Header.Get("Origin")))
	}
}

// origin counts and logs a page origin refused at endpoint.
func (f *refusals) origin(endpoint, origin string) {
	f.total.WithLabelValues(endpoint, "origin").Inc()
	f.log.Info("request refused", zap.String("endpoint", endpoint), zap.String("reason", "origin"), zap.String("origin", origin))
}
