package hub

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions prometheus.Gauge
	users    prometheus.Gauge
	frames   prometheus.Counter
	acks     prometheus.Counter
	dropped  *prometheus.CounterVec
	refused  *prometheus.CounterVec
	resumes  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{Name: "callpop_sessions", Help: "Open WebSocket sessions on this node."}),
		users:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "callpop_users_online", Help: "Users with at least one session on this node."}),
		frames:   prometheus.NewCounter(prometheus.CounterOpts{Name: "callpop_frames_sent_total", Help: "Live call and history frames written to sessions."}),
		acks:     prometheus.NewCounter(prometheus.CounterOpts{Name: "callpop_frames_acked_total", Help: "Cards the widgets reported on screen."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_sessions_dropped_total", Help: "Sessions closed by the server, by reason (slow, ping).",
		}, []string{"reason"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_sessions_refused_total", Help: "Sessions refused, by reason.",
		}, []string{"reason"}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_resumes_total", Help: "Sessions resumed with since=, by result (hit: nothing lost; miss: log too short).",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.users, m.frames, m.acks, m.dropped, m.refused, m.resumes)
	}
	return m
}
