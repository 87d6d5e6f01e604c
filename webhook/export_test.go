package webhook

import "github.com/prometheus/client_golang/prometheus"

// Requests is h's callpop_webhooks_total, for prometheus/testutil.
func Requests(h *Handler) *prometheus.CounterVec { return h.metrics.requests }

// TenantRequests is h's callpop_tenant_webhooks_total.
func TenantRequests(h *Handler) *prometheus.CounterVec { return h.metrics.tenants }
