package hub

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callpop/callpop/event"
)

type metrics struct {
	// tenantSessions and tenantFrames are by tenant (Config.TenantMetrics);
	// tenants holds each tenant's series once looked up, and off the
	// shared no-op ones.
	tenantSessions *prometheus.GaugeVec
	tenantFrames   *prometheus.CounterVec
	tenantWritten  *prometheus.SummaryVec
	tenantMu       sync.Mutex
	tenants        map[string]*tenantMetrics // guarded by tenantMu
	off            *tenantMetrics

	sessions prometheus.Gauge
	users    prometheus.Gauge
	frames   prometheus.Counter
	acks     prometheus.Counter // acks taken: see session.handle
	// acksIgnored counts acks for no frame written to the session lately,
	// or repeated.
	acksIgnored prometheus.Counter
	// acksUnstyled counts taken acks whose card showed without the widget's
	// styles (the CRM page's CSP blocked them): such a card is barely a card.
	acksUnstyled prometheus.Counter
	dropped      *prometheus.CounterVec
	refused      *prometheus.CounterVec
	resumes      *prometheus.CounterVec
	// delay is how long after the broker logged a frame (its id's time) it
	// reached this node, was written to a socket, and was shown by a widget.
	delay *prometheus.HistogramVec
}

// tenantMetrics are one tenant's series, looked up once per session, so a
// frame costs one atomic add more.
type tenantMetrics struct {
	sessions prometheus.Gauge
	frames   prometheus.Counter
	written  prometheus.Observer // delay to "written": a sum and a count, no buckets
}

// DefaultTenantLabel is the default tenant's value of the tenant label: "_"
// cannot start a tenant ID.
const DefaultTenantLabel = "_default"

// tenant returns id's series; the no-op ones when on is false.
func (m *metrics) tenant(id string, on bool) *tenantMetrics {
	if !on {
		return m.off
	}
	label := id
	if label == "" {
		label = DefaultTenantLabel
	}
	m.tenantMu.Lock()
	defer m.tenantMu.Unlock()
	t := m.tenants[label]
	if t == nil {
		t = &tenantMetrics{sessions: m.tenantSessions.WithLabelValues(label), frames: m.tenantFrames.WithLabelValues(label),
			written: m.tenantWritten.WithLabelValues(label)}
		m.tenants[label] = t
	}
	return t
}

// observe records a frame's delay at stage, measured from the time in its id,
// and returns it in seconds (-1 for an id without a time).
func (m *metrics) observe(stage string, id event.ID) float64 {
	if id.MS == 0 {
		return -1
	}
	d := max(time.Since(time.UnixMilli(int64(id.MS))), 0).Seconds()
	m.delay.WithLabelValues(stage).Observe(d)
	return d
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		tenantSessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "callpop_tenant_sessions", Help: "Open WebSocket sessions on this node, by tenant (_default: the default tenant).",
		}, []string{"tenant"}),
		tenantFrames: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_tenant_frames_sent_total", Help: "Live frames written to sessions, by tenant (_default: the default tenant).",
		}, []string{"tenant"}),
		// A sum and a count per tenant, no quantiles or buckets: the mean
		// delay by tenant at two series each; the distribution is
		// callpop_frame_delay_seconds's, for the whole node.
		tenantWritten: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "callpop_tenant_frame_delay_seconds",
			Help: "Time from a frame's publication to its write to a socket, by tenant (sum and count: the mean).",
		}, []string{"tenant"}),
		tenants: map[string]*tenantMetrics{},
		off: &tenantMetrics{sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "unregistered"}),
			frames:  prometheus.NewCounter(prometheus.CounterOpts{Name: "unregistered"}),
			written: prometheus.NewSummary(prometheus.SummaryOpts{Name: "unregistered"})},
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callpop_sessions", Help: "Open WebSocket sessions on this node."}),
		users:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "callpop_users_online", Help: "Users with at least one session on this node."}),
		frames:   prometheus.NewCounter(prometheus.CounterOpts{Name: "callpop_frames_sent_total", Help: "Live call and history frames written to sessions."}),
		acks:     prometheus.NewCounter(prometheus.CounterOpts{Name: "callpop_frames_acked_total", Help: "Cards the widgets reported on screen (acks of frames written to that session, each counted once)."}),
		acksIgnored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_acks_ignored_total", Help: "Acks not counted: for no frame written to that session lately, or repeated.",
		}),
		acksUnstyled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_frames_acked_unstyled_total", Help: "Acked cards the widget showed without its styles (the page's Content-Security-Policy blocked them).",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_sessions_dropped_total", Help: "Sessions closed by the server, by reason (slow, ping, flood).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_sessions_refused_total", Help: "Sessions refused, by reason.",
		}, []string{"reason"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_resumes_total", Help: "Sessions resumed with since=, by result (hit: nothing lost; miss: log too short).",
		}, []string{"result"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "callpop_frame_delay_seconds",
			Help:    "Time from a frame's publication (its id) to a stage: received by this node, written to the socket, shown by the widget (ack).",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"stage"}),
	}
	// Every known series exported at 0, so rate() and absent() alerts
	// (deploy/prometheus/alerts.yaml) see the first one.
	for _, reason := range []string{"slow", "ping", "flood"} {
		m.dropped.WithLabelValues(reason)
	}
	m.refused.WithLabelValues("too_many")
	for _, result := range []string{"hit", "miss"} {
		m.resumes.WithLabelValues(result)
	}
	for _, stage := range []string{"received", "written", "shown"} {
		m.delay.WithLabelValues(stage)
	}
	if reg != nil {
		reg.MustRegister(m.tenantSessions, m.tenantFrames, m.tenantWritten)
		reg.MustRegister(m.sessions, m.users, m.frames, m.acks, m.acksIgnored, m.acksUnstyled, m.dropped, m.refused, m.resumes, m.delay)
	}
	return m
}
