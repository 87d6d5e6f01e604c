package forward

import "github.com/prometheus/client_golang/prometheus"

// Metric returns f's collector of the metric name (its label's series for
// callpop_forward_retries_total), for prometheus/testutil.ToFloat64.
func Metric(f *Forwarder, name string, label ...string) prometheus.Collector {
	m := f.m
	switch name {
	case "callpop_forward_enqueued_total":
		return m.enqueued
	case "callpop_forward_duplicates_total":
		return m.duplicates
	case "callpop_forward_delivered_total":
		return m.delivered
	case "callpop_forward_dead_lettered_total":
		return m.dead
	case "callpop_forward_retries_total":
		return m.retries.WithLabelValues(label...)
	case "callpop_forward_queued":
		return m.queued
	case "callpop_forward_oldest_age_seconds":
		return m.oldest
	case "callpop_forward_dead_letters":
		return m.deadNow
	}
	panic("forward.Metric: no metric " + name)
}
