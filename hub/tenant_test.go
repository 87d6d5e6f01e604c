package hub_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/hub"
	"github.com/callpop/callpop/tenant"
)

// tenantHub serves a hub whose sessions take their identity from the
// query (?tid=&user=), as auth.Tenants would have verified it.
func tenantHub(tb testing.TB, cfg hub.Config) (*hub.Hub, *memory.Broker, string) {
	tb.Helper()
	b := memory.New(memory.Config{})
	cfg.TenantMetrics = true
	h := hub.New(cfg, b, zaptest.NewLogger(tb), prometheus.NewRegistry())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tid, user := r.URL.Query().Get("tid"), r.URL.Query().Get("user")
		id := auth.Identity{User: user, Key: tenant.Key(tid, user), Tenant: tid, Expires: time.Now().Add(time.Hour)}
		h.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	}))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	return h, b, strings.Replace(srv.URL, "http", "ws", 1)
}

func dialAs(tb testing.TB, url, tid, user string) *websocket.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url+"?tid="+tid+"&user="+user, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.CloseNow() })
	return c
}

// Closing a tenant closes its sessions only, with the code given; hello
// names the user without the tenant; sessions and frames are counted by
// tenant; a tenant's own cap on sessions per user holds.
func TestCloseTenantClosesOnlyThatTenantsSessions(t *testing.T) {
	t.Parallel()
	h, b, url := tenantHub(t, hub.Config{MaxSessionsFor: func(tid string) int {
		if tid == "acme.example" {
			return 1
		}
		return 0
	}})
	acme, other, def := dialAs(t, url, "acme.example", "andy"), dialAs(t, url, "other.example", "andy"), dialAs(t, url, "", "andy")
	for _, c := range []*websocket.Conn{acme, other, def} {
		if f := read(t, c); f["user"] != "andy" {
			t.Fatalf("hello %v, want user andy", f)
		}
	}
	if code := closeStatus(t, dialAs(t, url, "acme.example", "andy")); code != event.CloseTooMany {
		t.Fatalf("acme's second session closed with %d, want %d (its cap is 1)", code, event.CloseTooMany)
	}
	dialAs(t, url, "other.example", "andy") // other's cap is the default
	waitSessions(t, &testHub{Hub: h}, 4)
	if n := testutil.ToFloat64(hub.Metric(h, "callpop_tenant_sessions", "other.example")); n != 2 {
		t.Fatalf("callpop_tenant_sessions{tenant=other.example} = %v, want 2", n)
	}
	ev := event.Event{Type: event.Incoming, CallID: "c1", User: "andy", Phone: "79101234567", At: time.Now()}
	if err := b.Update(context.Background(), tenant.Key("other.example", "c1"), func(r *event.CallState) []event.Out {
		r.Scope = tenant.Key("other.example", "")
		return r.ApplyEvent(ev)
	}); err != nil {
		t.Fatal(err)
	}
	if f := read(t, other); f["callid"] != "c1" || f["user"] != "andy" {
		t.Fatalf("other's frame %v", f)
	}

	if n := h.CloseTenant("acme.example", event.CloseTenantDisabled, "tenant disabled"); n != 1 {
		t.Fatalf("closed %d sessions, want 1", n)
	}
	if code := closeStatus(t, acme); code != event.CloseTenantDisabled {
		t.Fatalf("acme's session closed with %d, want 4502", code)
	}
	waitSessions(t, &testHub{Hub: h}, 3)
	if got := h.Tenants(); len(got) != 1 || got[0] != "other.example" {
		t.Fatalf("tenants with sessions %v, want [other.example]", got)
	}
	if n := testutil.ToFloat64(hub.Metric(h, "callpop_tenant_frames_sent_total", "other.example")); n != 2 {
		t.Fatalf("callpop_tenant_frames_sent_total{tenant=other.example} = %v, want 2 (its two sessions)", n)
	}
	if n := testutil.ToFloat64(hub.Metric(h, "callpop_tenant_frames_sent_total", "acme.example")); n != 0 {
		t.Fatalf("acme counted %v frames, want 0", n)
	}
}
