package webhook_test

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/webhook"
)

// serveScoped serves h for sc on every path.
func serveScoped(tb testing.TB, h *webhook.Handler, sc *webhook.Scope) *httptest.Server {
	tb.Helper()
	return serveHandler(tb, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeScoped(w, r, sc) }))
}

// A tenant's webhook goes to the tenant's user key only, under its own
// token; the default tenant's token is refused there, its own call state
// is apart, and the tenant's label counts it.
func TestScopedWebhookReachesOnlyTheTenantsUser(t *testing.T) {
	t.Parallel()
	b := memory.New(memory.Config{})
	reg := prometheus.NewRegistry()
	h, err := webhook.New(webhook.Config{CRMToken: testToken, Tenants: true}, b, nil, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	const acmeToken = "acme-token-0123456789"
	admit := true
	sc := &webhook.Scope{Tenant: "acme.example", Label: "acme.example",
		TokenOK: func(got string) bool { return auth.TokenEqual(acmeToken, got) }, Admit: func() bool { return admit }}
	def, acme := serveHandler(t, h), serveScoped(t, h, sc)
	var mu sync.Mutex
	counts := map[string]int{}
	b.Register(func(m event.Message) { mu.Lock(); counts[m.UserKey]++; mu.Unlock() })
	got := func() map[string]int { mu.Lock(); defer mu.Unlock(); return maps.Clone(counts) }
	for _, u := range []string{"andy", "acme.example/andy"} {
		if err := b.Subscribe(t.Context(), u); err != nil {
			t.Fatal(err)
		}
	}

	checkAnswer(t, post(t, acme, eventFields("c1")), http.StatusUnauthorized, `{"error":"Invalid token"}`)
	checkAnswer(t, post(t, acme, eventFields("c1").with("crm_token", acmeToken)), http.StatusOK, "")
	if got := got(); got["acme.example/andy"] != 1 || got["andy"] != 0 {
		t.Fatalf("frames by user key %v, want one for acme.example/andy only", got)
	}
	// The same callid in the default tenant is a call of its own: it rings.
	checkAnswer(t, post(t, def, eventFields("c1")), http.StatusOK, "")
	if got := got(); got["andy"] != 1 || got["acme.example/andy"] != 1 {
		t.Fatalf("frames by user key %v, want one each", got)
	}
	admit = false
	limited := post(t, acme, eventFields("c2").with("crm_token", acmeToken))
	checkAnswer(t, limited, http.StatusTooManyRequests, `{"error":"Too many requests"}`)
	if ra := limited.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	for status, want := range map[string]float64{"200": 1, "401": 1, "429": 1} {
		if n := testutil.ToFloat64(webhook.TenantRequests(h).WithLabelValues("acme.example", status)); n != want {
			t.Errorf("callpop_tenant_webhooks_total{tenant=acme.example,status=%s} = %v, want %v", status, n, want)
		}
	}
}

// A login holding "/" is refused: it could name another tenant's key. With
// tenants on, so is a default tenant's callid holding "/".
func TestSlashInLoginOrDefaultCallIDIsRefused(t *testing.T) {
	t.Parallel()
	b := memory.New(memory.Config{})
	single := serve(t, webhook.Config{}, b, nil)
	multi := serve(t, webhook.Config{Tenants: true}, b, nil)
	for _, srv := range []*httptest.Server{single, multi} {
		checkAnswer(t, post(t, srv, eventFields("c9").with("user", "acme.example/andy")), http.StatusBadRequest, `{"error":"Invalid parameters"}`)
		checkAnswer(t, post(t, srv, historyFields("c9").with("user", "a/b@acme")), http.StatusBadRequest, `{"error":"Invalid parameters"}`)
	}
	checkAnswer(t, post(t, single, eventFields("acme.example/c9")), http.StatusOK, "")
	checkAnswer(t, post(t, multi, eventFields("acme.example/c9")), http.StatusBadRequest, `{"error":"Invalid parameters"}`)
}
