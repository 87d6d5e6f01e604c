package hub

import "github.com/prometheus/client_golang/prometheus"

// SentSlots is how many of the last frames written to a session may be acked.
const SentSlots = sentSlots

// Metric returns h's collector of the counter name, with label's series for
// a labelled one, for prometheus/testutil.ToFloat64.
func Metric(h *Hub, name, label string) prometheus.Collector {
	m := h.metrics
	switch name {
	case "callpop_frames_sent_total":
		return m.frames
	case "callpop_frames_acked_total":
		return m.acks
	case "callpop_acks_ignored_total":
		return m.acksIgnored
	case "callpop_frames_acked_unstyled_total":
		return m.acksUnstyled
	case "callpop_sessions_dropped_total":
		return m.dropped.WithLabelValues(label)
	case "callpop_sessions_refused_total":
		return m.refused.WithLabelValues(label)
	case "callpop_resumes_total":
		return m.resumes.WithLabelValues(label)
	case "callpop_tenant_sessions":
		return m.tenantSessions.WithLabelValues(label)
	case "callpop_tenant_frames_sent_total":
		return m.tenantFrames.WithLabelValues(label)
	}
	panic("hub.Metric: no counter " + name)
}

// WithoutPoller is cfg for a hub whose sessions keep a reader goroutine each,
// so a synctest bubble can wait on all of them.
func WithoutPoller(cfg Config) Config { cfg.noPoller = true; return cfg }
