package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
	"github.com/callpop/callpop/tenant"
)

// The isolation suite (issue 14): two tenants with the same login, callid and
// phone number, beside the default tenant, on two nodes sharing a broker —
// the embedded one and Redis.

// fakeTenant is one tenant of the suite and the services it points at.
type fakeTenant struct {
	id, crmToken, jwtSecret, origin string
	contactName                     string // what its CRM answers for every number
	sink                            *crmSink

	mu       sync.Mutex
	lookups  []string     // phone numbers its CRM was asked for
	pbxCalls []string     // bodies of requests its PBX received, but accounts
	accounts atomic.Int32 // accounts requests its PBX received (real names)
}

func (ft *fakeTenant) record(list *[]string, v string) {
	ft.mu.Lock()
	*list = append(*list, v)
	ft.mu.Unlock()
}

func (ft *fakeTenant) seen() (lookups, pbxCalls []string) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return slices.Clone(ft.lookups), slices.Clone(ft.pbxCalls)
}

// newFakeTenant starts the tenant's CRM contact look-up and PBX API and
// returns the tenant as the registry would hold it.
func newFakeTenant(t *testing.T, id, name string) (*fakeTenant, *tenant.Tenant) {
	t.Helper()
	ft := &fakeTenant{id: id, contactName: name, crmToken: "crm-" + id + "-0123456789",
		jwtSecret: "jwt-" + id + "-0123456789abcdef0123456789", origin: "https://crm." + id}
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ft.record(&ft.lookups, r.URL.Query().Get("phone"))
		_ = json.NewEncoder(w).Encode(map[string]string{"contact_name": ft.contactName, "responsible": "andy"})
	}))
	t.Cleanup(crm.Close)
	pbxSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if f, _ := url.ParseQuery(string(b)); f.Get("cmd") == "accounts" {
			// The tenant's staff, for real names: andy is its own andy.
			ft.accounts.Add(1)
			_ = json.NewEncoder(w).Encode([]map[string]string{{"name": "andy", "realName": "Andy of " + id, "ext": "701"}})
			return
		}
		ft.record(&ft.pbxCalls, string(b))
		_ = json.NewEncoder(w).Encode(map[string]string{"callid": "pbx-" + id})
	}))
	t.Cleanup(pbxSrv.Close)
	sink, sinkURL := newCRMSink(t)
	ft.sink = sink
	return ft, &tenant.Tenant{
		HistoryForwardURL: sinkURL + "/records",
		ID:                id, Enabled: true,
		CRMTokens:  []tenant.Secret{{Value: ft.crmToken}},
		JWTSecrets: []tenant.Secret{{Value: ft.jwtSecret}},
		PBXURL:     pbxSrv.URL + "/sys/crm_api.wcgp", PBXToken: "pbx-" + id,
		ContactURL:     crm.URL + "/contact?phone={phone}",
		AllowedOrigins: []string{ft.origin},
	}
}

// token mints a widget token of the tenant for user (tid claim, its secret).
func (ft *fakeTenant) token(t *testing.T, user string) string {
	t.Helper()
	return mintTenantToken(t, ft.id, ft.jwtSecret, user)
}

func mintTenantToken(t *testing.T, tid, secret, user string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": user, "exp": time.Now().Add(time.Hour).Unix()}
	if tid != "" {
		claims["tid"] = tid
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tenantNode is a node of the suite with its captured log.
type tenantNode struct {
	*node
	logs *observer.ObservedLogs
}

// startTenantNode runs a node serving dir's tenants on broker b (nil: from
// cfg), logging to the test and to an observer.
func startTenantNode(t *testing.T, cfg *config, b event.Broker, dir tenant.Directory) *tenantNode {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), core))
	s, err := newServer(cfg, log, serverOptions{broker: b, tenants: dir})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &tenantNode{node: serveNode(t, s, ln), logs: logs}
}

// postTo posts a webhook form to path with crm_token and request id rid.
func postTo(t *testing.T, base, path, crmToken, rid string, fields ...string) (int, string) {
	t.Helper()
	form := url.Values{"crm_token": {crmToken}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Request-Id", rid)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// bearer calls base+path with token and returns the status and JSON body.
func bearer(t *testing.T, base, method, path, token, origin, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// dialToken opens a session with token on n: a ticket from POST
// /api/ws-ticket, as the widget does, the socket opened with origin.
func dialToken(t *testing.T, n *node, token, origin string) *client {
	t.Helper()
	st, body := bearer(t, n.base, http.MethodPost, "/api/ws-ticket", token, "", "")
	tk, _ := body["ticket"].(string)
	if st != http.StatusOK || tk == "" {
		t.Fatalf("POST /api/ws-ticket: %d %v", st, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := strings.Replace(n.base, "http", "ws", 1) + "/ws?ticket=" + tk
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c := &client{t: t, conn: conn, frames: make(chan map[string]any, 1024), closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				c.closed <- err
				close(c.frames)
				return
			}
			var f map[string]any
			_ = json.Unmarshal(data, &f)
			c.frames <- f
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	return c
}

// until reads frames up to the call frame for callid marker and returns
// the ones before it: with a marker sent last, every frame that reached
// the session is seen, so one that should not have is caught.
func (c *client) until(marker string) []map[string]any {
	c.t.Helper()
	var before []map[string]any
	for {
		f := c.next()
		if f["type"] == "call" && f["callid"] == marker {
			return before
		}
		before = append(before, f)
	}
}

func TestTenantsAreIsolated(t *testing.T) {
	for _, kind := range brokers {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testTenantsIsolated(t, kind)
		})
	}
}

func testTenantsIsolated(t *testing.T, kind string) {
	acme, acmeT := newFakeTenant(t, "acme.example", "Acme Ltd")
	globex, globexT := newFakeTenant(t, "globex.example", "Globex Corp")
	dir := tenant.NewStatic(acmeT, globexT)
	sink, sinkURL := newCRMSink(t) // the default tenant's history forwarding
	args := []string{"--history-forward-url", sinkURL}
	var a, b *tenantNode
	var rdb *goredis.Client
	switch kind {
	case "memory":
		shared := memory.New(memory.Config{})
		a = startTenantNode(t, testConfig(t, append(args, "--data-dir", t.TempDir())...), shared, dir)
		b = startTenantNode(t, testConfig(t, append(args, "--data-dir", t.TempDir())...), shared.Node(), dir)
	case "redis":
		rs := redistest.Start(t)
		args = append(args, "--redis-url", rs.URL())
		a = startTenantNode(t, testConfig(t, args...), nil, dir)
		b = startTenantNode(t, testConfig(t, args...), nil, dir)
		opt, _ := goredis.ParseURL(rs.URL())
		rdb = goredis.NewClient(opt)
		t.Cleanup(func() { rdb.Close() })
	}

	// andy in each tenant, and in the default one, on node b; the tickets
	// come from node a.
	sessA := dialToken(t, a.node, acme.token(t, "andy"), acme.origin)
	_ = sessA
	acmeS, globexS := dialToken(t, b.node, acme.token(t, "andy"), acme.origin), dialToken(t, b.node, globex.token(t, "Andy@globex"), globex.origin)
	defS := dialToken(t, b.node, mintTenantToken(t, "", testSecret, "andy"), "")
	for _, c := range []*client{sessA, acmeS, globexS, defS} {
		if h := c.hello(); h["user"] != "andy" {
			t.Fatalf("hello %v, want user andy", h)
		}
	}

	// The same call in all three, posted to node a: at /webhook/{tenant},
	// at /{tenant}, and at the default tenant's /webhook.
	type route struct {
		name, path, crmToken string
	}
	routes := []route{
		{"acme", "/webhook/acme.example", acme.crmToken},
		{"globex", "/globex.example", globex.crmToken},
		{"default", "/webhook", testCRMToken},
	}
	rid := 0
	post := func(r route, fields ...string) {
		t.Helper()
		rid++
		if st, body := postTo(t, a.base, r.path, r.crmToken, fmt.Sprintf("%s-%d", r.name, rid), fields...); st != http.StatusOK {
			t.Fatalf("%s %v: %d %s", r.name, fields, st, body)
		}
	}
	call := []string{"cmd", "event", "type", "INCOMING", "user", "andy", "callid", "c1", "phone", "79101234567"}
	missed := []string{"cmd", "history", "type", "in", "user", "andy", "phone", "79101234567", "start", "20261125T120000Z",
		"duration", "0", "callid", "c1", "status", "Missed"}
	for _, r := range routes {
		if st, body := postTo(t, a.base, r.path, r.crmToken, r.name+"-contact", "cmd", "contact", "phone", "79101234567", "callid", "c1"); st != http.StatusOK ||
			!strings.Contains(body, map[string]string{"acme": "Acme Ltd", "globex": "Globex Corp", "default": "{}"}[r.name]) {
			t.Fatalf("%s contact answer %d %s", r.name, st, body)
		}
		post(r, call...)
		post(r, missed...)
		post(r, "cmd", "event", "type", "INCOMING", "user", "andy", "callid", "end-"+r.name, "phone", "79101234567")
	}

	// Each session got its own tenant's call, history and nothing else.
	wantContact := map[*client]string{acmeS: "Acme Ltd", sessA: "Acme Ltd", globexS: "Globex Corp", defS: ""}
	marker := map[*client]string{acmeS: "end-acme", sessA: "end-acme", globexS: "end-globex", defS: "end-default"}
	for c, name := range wantContact {
		frames := c.until(marker[c])
		var kinds []string
		for _, f := range frames {
			kinds = append(kinds, fmt.Sprint(f["type"], ":", f["event"], ":", f["callid"]))
			contact, _ := f["contact"].(map[string]any)
			if got, _ := contact["name"].(string); got != name {
				t.Errorf("session of %s: frame %v carries contact %q", marker[c], f, got)
			}
			if f["user"] != nil && f["user"] != "andy" {
				t.Errorf("frame %v names user %v", f, f["user"])
			}
		}
		want := []string{"call:INCOMING:c1", "call:CANCELLED:c1", "history:<nil>:c1"}
		if !slices.Equal(kinds, want) {
			t.Errorf("session of %s got %v, want %v", marker[c], kinds, want)
		}
	}

	// Each CRM was asked by its own tenant only (and at least once).
	for _, ft := range []*fakeTenant{acme, globex} {
		if lookups, _ := ft.seen(); len(lookups) == 0 {
			t.Errorf("%s's CRM was never asked", ft.id)
		}
	}
	if rdb != nil { // one cache entry per tenant for the one number, none shared
		keys, err := rdb.Keys(context.Background(), "callpop:contact:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		want := []string{"callpop:contact:acme.example/79101234567", "callpop:contact:globex.example/79101234567"}
		if !slices.Equal(keys, want) {
			t.Errorf("contact cache keys %v, want %v", keys, want)
		}
	}

	// /api: each tenant's recent calls are its own; marking one seen
	// touches no other; click-to-call goes to the tenant's PBX.
	apiAs := map[string]string{"acme": acme.token(t, "andy"), "globex": globex.token(t, "andy"),
		"default": mintTenantToken(t, "", testSecret, "andy")}
	for name, tok := range apiAs {
		st, body := bearer(t, b.base, http.MethodGet, "/api/calls", tok, "", "")
		calls, _ := body["calls"].([]any)
		if st != http.StatusOK || len(calls) != 1 || body["unseen_missed"] != 1.0 {
			t.Fatalf("%s's /api/calls: %d %v", name, st, body)
		}
		rec, _ := calls[0].(map[string]any)
		contact, _ := rec["contact"].(map[string]any)
		if want := map[string]any{"acme": "Acme Ltd", "globex": "Globex Corp", "default": nil}[name]; contact["name"] != want {
			t.Errorf("%s's record %v, want contact %v", name, rec, want)
		}
	}
	if st, body := bearer(t, a.base, http.MethodPost, "/api/calls/seen", apiAs["acme"], "", `{"all":true}`); st != http.StatusOK || body["marked"] != 1.0 {
		t.Fatalf("acme marks its calls seen: %d %v", st, body)
	}
	for name, want := range map[string]float64{"acme": 0, "globex": 1, "default": 1} {
		if _, body := bearer(t, b.base, http.MethodGet, "/api/calls", apiAs[name], "", ""); body["unseen_missed"] != want {
			t.Errorf("after acme's mark, %s's unseen_missed = %v, want %v", name, body["unseen_missed"], want)
		}
	}
	if f := acmeS.next(); f["type"] != "seen" || f["callid"] != "c1" {
		t.Fatalf("acme's session got %v, want its seen frame", f)
	}
	for name, want := range map[string]int{"acme": http.StatusOK, "globex": http.StatusOK, "default": http.StatusServiceUnavailable} {
		if st, body := bearer(t, a.base, http.MethodPost, "/api/call", apiAs[name], "", `{"phone":"79101234567"}`); st != want ||
			(want == http.StatusOK && body["callid"] != "pbx-"+name+".example") {
			t.Errorf("%s's click-to-call: %d %v, want %d from its own PBX", name, st, body, want)
		}
	}
	for _, ft := range []*fakeTenant{acme, globex} {
		if _, calls := ft.seen(); len(calls) != 1 || !strings.Contains(calls[0], "pbx-"+ft.id) {
			t.Errorf("%s's PBX received %v, want its one makeCall with its own token", ft.id, calls)
		}
	}

	// Tokens: a tenant's token never opens another tenant's socket, nor the
	// default one's; origins are the tenant's own.
	forged := map[string]string{
		"acme's secret naming globex":  mintTenantToken(t, "globex.example", acme.jwtSecret, "andy"),
		"acme's secret without tid":    mintTenantToken(t, "", acme.jwtSecret, "andy"),
		"default's secret naming acme": mintTenantToken(t, "acme.example", testSecret, "andy"),
		"a login holding /":            mintTenantToken(t, "acme.example", acme.jwtSecret, "globex.example/andy"),
	}
	for name, tok := range forged {
		if st, _ := bearer(t, a.base, http.MethodPost, "/api/ws-ticket", tok, "", ""); st != http.StatusUnauthorized {
			t.Errorf("%s: ticket %d, want 401", name, st)
		}
		if st := dialStatus(t, strings.Replace(a.base, "http", "ws", 1)+"/ws", http.Header{"Authorization": {"Bearer " + tok}}); st != http.StatusUnauthorized {
			t.Errorf("%s: socket %d, want 401", name, st)
		}
	}
	if st, _ := bearer(t, a.base, http.MethodGet, "/api/dnd", apiAs["acme"], globex.origin, ""); st != http.StatusForbidden {
		t.Errorf("acme's token from globex's origin: %d, want 403", st)
	}
	if st, _ := bearer(t, a.base, http.MethodGet, "/api/calls", apiAs["acme"], acme.origin, ""); st != http.StatusOK {
		t.Errorf("acme's token from acme's origin: %d, want 200", st)
	}

	// Forwarding: each tenant's CRM receives its own record only, the
	// default tenant's too.
	for s, contact := range map[*crmSink]any{sink: nil, acme.sink: "Acme Ltd", globex.sink: "Globex Corp"} {
		s.waitFor(t, "c1")
		s.mu.Lock()
		var got any
		if len(s.seen) == 1 {
			c, _ := s.seen[0]["contact"].(map[string]any)
			got = c["name"]
		}
		if len(s.seen) != 1 || got != contact {
			t.Errorf("a CRM expecting the record with contact %v received %v", contact, s.seen)
		}
		s.mu.Unlock()
	}

	// Disabling acme closes its sockets with 4502 on every node and 401s
	// its webhooks as an unknown tenant's; globex is untouched.
	off := *acmeT
	off.Enabled = false
	dir.Set(&off)
	for _, c := range []*client{acmeS, sessA} {
		if code := c.closeCode(); code != event.CloseTenantDisabled {
			t.Fatalf("acme's session closed with %d, want %d", code, event.CloseTenantDisabled)
		}
	}
	stOff, bodyOff := postTo(t, b.base, "/webhook/acme.example", acme.crmToken, "acme-off", call...)
	stUnknown, bodyUnknown := postTo(t, b.base, "/webhook/nobody.example", acme.crmToken, "unknown-1", call...)
	stBad, bodyBad := postTo(t, b.base, "/webhook/globex.example", acme.crmToken, "globex-bad", call...)
	if stOff != http.StatusUnauthorized || bodyOff != `{"error":"Invalid token"}` || stUnknown != stOff || bodyUnknown != bodyOff ||
		stBad != stOff || bodyBad != bodyOff {
		t.Fatalf("disabled %d %s, unknown %d %s, bad token %d %s: want one 401 for all", stOff, bodyOff, stUnknown, bodyUnknown, stBad, bodyBad)
	}
	if st, _ := bearer(t, a.base, http.MethodPost, "/api/ws-ticket", apiAs["acme"], "", ""); st != http.StatusUnauthorized {
		t.Errorf("disabled acme's token got a ticket: %d", st)
	}
	post(routes[1], "cmd", "event", "type", "INCOMING", "user", "andy", "callid", "c2", "phone", "79101234567")
	globexS.expectCall("INCOMING", "c2")

	// Metrics: the tenant label holds tenant IDs and _-names only, never a
	// user; each node counted acme's webhooks under acme.
	label := regexp.MustCompile(`tenant="([^"]*)"`)
	for _, n := range []*tenantNode{a, b} {
		resp, err := http.Get(n.base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		text, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, m := range label.FindAllStringSubmatch(string(text), -1) {
			if !slices.Contains([]string{"acme.example", "globex.example", "_default", "_unknown"}, m[1]) {
				t.Errorf("metric label tenant=%q", m[1])
			}
		}
		if strings.Contains(string(text), `"andy"`) {
			t.Error("a metric label names a user")
		}
	}
	if !strings.Contains(metricsText(t, a.base), `callpop_tenant_webhooks_total{status="200",tenant="acme.example"} 4`) {
		t.Errorf("node a's acme webhooks: %s", grepLines(metricsText(t, a.base), "callpop_tenant_webhooks_total"))
	}
	if text := metricsText(t, a.base); !strings.Contains(text, `callpop_tenant_webhook_duration_seconds_count{tenant="acme.example"} 4`) {
		t.Errorf("node a's acme webhook durations: %s", grepLines(text, "callpop_tenant_webhook_duration_seconds"))
	}
	if text := metricsText(t, b.base); !regexp.MustCompile(`callpop_tenant_frame_delay_seconds_count\{tenant="globex.example"\} [1-9]`).MatchString(text) ||
		!regexp.MustCompile(`callpop_tenant_sessions\{tenant="globex.example"\} 1`).MatchString(text) {
		t.Errorf("node b's globex series: %s", grepLines(text, "globex"))
	}

	// Logs: a line about one tenant's request names that tenant only.
	for _, n := range []*tenantNode{a, b} {
		for _, e := range n.logs.All() {
			fields := e.ContextMap()
			rid, _ := fields["request_id"].(string)
			tid, _ := fields["tenant"].(string)
			line := fmt.Sprint(e.Message, fields)
			switch {
			case strings.HasPrefix(rid, "acme-") && (tid != "acme.example" || strings.Contains(line, "globex")):
				t.Errorf("acme's request logged %s", line)
			case strings.HasPrefix(rid, "globex-") && (tid != "globex.example" || strings.Contains(line, "acme")):
				t.Errorf("globex's request logged %s", line)
			case strings.HasPrefix(rid, "default-") && (tid != "" || strings.Contains(line, ".example")):
				t.Errorf("the default tenant's request logged %s", line)
			}
		}
	}
}

func metricsText(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestTenantFloodingWebhooksIsLimitedAndOthersAreNot: a tenant over its
// webhook rate gets 429 JSON with Retry-After; another tenant posting
// meanwhile is answered 200 every time.
func TestTenantFloodingWebhooksIsLimitedAndOthersAreNot(t *testing.T) {
	t.Parallel()
	flood, floodT := newFakeTenant(t, "flood.example", "Flood")
	calm, calmT := newFakeTenant(t, "calm.example", "Calm")
	floodT.Limits.WebhookRate = 5 // bursts of 10
	floodT.ContactURL, calmT.ContactURL = "", ""
	n := startTenantNode(t, testConfig(t), nil, tenant.NewStatic(floodT, calmT))
	var wg sync.WaitGroup
	statuses := make(chan int, 200)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				st, body := postTo(t, n.base, "/webhook/flood.example", flood.crmToken, "flood", "cmd", "event", "type", "INCOMING",
					"user", "andy", "callid", fmt.Sprintf("f%d-%d", w, i), "phone", "79101234567")
				if st == http.StatusTooManyRequests && body != `{"error":"Too many requests"}` {
					t.Errorf("429 body %s", body)
				}
				statuses <- st
			}
		}()
	}
	for i := range 20 {
		if st, body := postTo(t, n.base, "/calm.example", calm.crmToken, "calm", "cmd", "event", "type", "INCOMING",
			"user", "andy", "callid", fmt.Sprintf("c%d", i), "phone", "79101234567"); st != http.StatusOK {
			t.Fatalf("calm tenant's webhook %d during the flood: %d %s", i, st, body)
		}
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for st := range statuses {
		count[st]++
	}
	// 100 posts in well under the 18 s the bucket needs to admit them all.
	if count[http.StatusTooManyRequests] == 0 || count[http.StatusOK] < 10 || count[http.StatusOK]+count[http.StatusTooManyRequests] != 100 {
		t.Fatalf("flooding tenant's answers %v: want its burst of 10 (and what refilled) 200, the rest 429", count)
	}
	text := metricsText(t, n.base)
	if !strings.Contains(text, fmt.Sprintf(`callpop_tenant_webhooks_total{status="429",tenant="flood.example"} %d`, count[http.StatusTooManyRequests])) ||
		!strings.Contains(text, `callpop_tenant_webhooks_total{status="200",tenant="calm.example"} 20`) {
		t.Errorf("metrics: %s", grepLines(text, "callpop_tenant_webhooks_total"))
	}
}

// TestOneTenantsFailedLoginsBlockNoOtherTenant: the PBX servers post for
// every tenant from the same addresses, so a disabled tenant's PBX still
// posting (or one with a stale crm_token) spends a failed-login budget of
// that tenant's own: it ends in 429, while other tenants and the default
// one, from the same address, are still served; so are they after a flood
// of unknown tenant paths (a removed tenant's PBX, or a probe), which
// spends a budget of unknown paths' own.
func TestOneTenantsFailedLoginsBlockNoOtherTenant(t *testing.T) {
	t.Parallel()
	stale, staleT := newFakeTenant(t, "stale.example", "Stale")
	ok, okT := newFakeTenant(t, "ok.example", "Ok")
	staleT.ContactURL, okT.ContactURL, staleT.HistoryForwardURL, okT.HistoryForwardURL = "", "", "", ""
	n := startTenantNode(t, testConfig(t), nil, tenant.NewStatic(staleT, okT))
	ev := func(callid string) []string {
		return []string{"cmd", "event", "type", "INCOMING", "user", "andy", "callid", callid, "phone", "79101234567"}
	}
	var got []int
	for i := range 15 {
		st, _ := postTo(t, n.base, "/webhook/stale.example", "rotated-away-0123456789", "stale", ev(fmt.Sprint("s", i))...)
		got = append(got, st)
	}
	if got[0] != http.StatusUnauthorized || got[14] != http.StatusTooManyRequests {
		t.Fatalf("stale tenant's answers %v: want 401s, then 429 once its budget is spent", got)
	}
	if st, body := postTo(t, n.base, "/webhook/stale.example", stale.crmToken, "stale-right", ev("s-right")...); st != http.StatusTooManyRequests {
		t.Fatalf("the stale tenant from its blocked address: %d %s, want 429 until its budget refills", st, body)
	}
	for i := range 15 { // someone probing tenant IDs, from the same address
		postTo(t, n.base, fmt.Sprintf("/webhook/probe%d.example", i), "guess-0123456789", "probe", ev("p")...)
	}
	if st, body := postTo(t, n.base, "/ok.example", ok.crmToken, "ok-1", ev("o1")...); st != http.StatusOK {
		t.Fatalf("another tenant from the same address: %d %s", st, body)
	}
	if st, body := postTo(t, n.base, "/webhook/ok.example", ok.crmToken, "ok-2", ev("o2")...); st != http.StatusOK {
		t.Fatalf("another tenant from the same address: %d %s", st, body)
	}
	if st, body := postTo(t, n.base, "/webhook", testCRMToken, "default-1", ev("d1")...); st != http.StatusOK {
		t.Fatalf("the default tenant from the same address: %d %s", st, body)
	}
	if st, _ := postTo(t, n.base, "/webhook/probe99.example", "guess-0123456789", "probe", ev("p")...); st != http.StatusTooManyRequests {
		t.Fatalf("the probing address on unknown paths: %d, want 429", st)
	}
}

// TestDisablingATenantInTheRegistryClosesItsSocketsAtOnce: with a registry
// that reports changes, a disabled tenant's sockets close with 4502 on the
// change itself — the periodic sweep is an hour away here — and the other
// tenant's stay open and served.
func TestDisablingATenantInTheRegistryClosesItsSocketsAtOnce(t *testing.T) {
	t.Parallel()
	acme, acmeT := newFakeTenant(t, "acme.example", "Acme Ltd")
	globex, globexT := newFakeTenant(t, "globex.example", "Globex Corp")
	reg := tenant.NewRegistry()
	reg.Replace([]*tenant.Tenant{acmeT, globexT})
	s, err := newServer(testConfig(t, "--data-dir", t.TempDir()), zaptest.NewLogger(t),
		serverOptions{tenants: reg, tenantSweep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := serveNode(t, s, ln)
	acmeS, globexS := dialToken(t, n, acme.token(t, "andy"), acme.origin), dialToken(t, n, globex.token(t, "andy"), globex.origin)
	acmeS.hello()
	globexS.hello()

	off := acmeT.Clone()
	off.Enabled = false
	reg.Set(off)
	if code := acmeS.closeCode(); code != event.CloseTenantDisabled {
		t.Fatalf("acme's session closed with %d, want %d", code, event.CloseTenantDisabled)
	}
	st, _ := postTo(t, n.base, "/webhook/globex.example", globex.crmToken, "globex-1",
		"cmd", "event", "type", "INCOMING", "user", "andy", "callid", "g1", "phone", "79101234567")
	if st != http.StatusOK {
		t.Fatalf("globex's webhook: %d", st)
	}
	if f := globexS.next(); f["type"] != "call" || f["callid"] != "g1" {
		t.Fatalf("globex's session got %v, want its call g1", f)
	}
}

// TestForwardingIsCountedByTenant: each tenant's forwarded call records are
// counted under its own tenant label — delivered, failed POSTs, queued,
// dead letters — from 0 as soon as its forwarder runs; a tenant this node
// never served has no series.
func TestForwardingIsCountedByTenant(t *testing.T) {
	t.Parallel()
	acme, acmeT := newFakeTenant(t, "acme.example", "Acme Ltd")
	globex, globexT := newFakeTenant(t, "globex.example", "Globex Corp")
	_, idleT := newFakeTenant(t, "idle.example", "Idle Inc")
	// globex's CRM refuses its first POST, then takes them.
	var globexPosts atomic.Int32
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if globexPosts.Add(1) == 1 {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
		}
	}))
	t.Cleanup(flaky.Close)
	globexT.HistoryForwardURL = flaky.URL + "/records"
	sink, sinkURL := newCRMSink(t) // the default tenant's CRM
	cfg := testConfig(t, "--history-forward-url", sinkURL, "--data-dir", t.TempDir())
	s, err := newServer(cfg, zaptest.NewLogger(t), serverOptions{tenants: tenant.NewStatic(acmeT, globexT, idleT)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := serveNode(t, s, ln)
	names := []string{"callpop_tenant_forward_delivered_total", "callpop_tenant_forward_failed_total",
		"callpop_tenant_forward_queued", "callpop_tenant_forward_dead_letters"}
	// want is the exposition of the four series for each tenant given as
	// {delivered, failed, queued}; dead letters stay 0.
	want := func(counts map[string][3]int) string {
		var b strings.Builder
		for i, name := range names {
			kind := map[bool]string{true: "counter", false: "gauge"}[strings.HasSuffix(name, "_total")]
			fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, helpOf(t, s, name), name, kind)
			for _, id := range slices.Sorted(maps.Keys(counts)) {
				v := 0
				if i < 3 {
					v = counts[id][i]
				}
				fmt.Fprintf(&b, "%s{tenant=%q} %d\n", name, id, v)
			}
		}
		return b.String()
	}
	settle := func(what string, counts map[string][3]int) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			err := testutil.GatherAndCompare(s.registry, strings.NewReader(want(counts)), names...)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s: %v", what, err)
			}
		}
	}

	// Before any webhook: the default tenant's forwarder only.
	settle("the default tenant's series", map[string][3]int{"_default": {}})
	// globex's first webhook starts its forwarder: its series at 0.
	if st, body := postTo(t, n.base, "/webhook/globex.example", globex.crmToken, "g-0", "cmd", "contact", "phone", "79101234567", "callid", "g0"); st != http.StatusOK {
		t.Fatalf("globex contact: %d %s", st, body)
	}
	settle("globex's series at 0", map[string][3]int{"_default": {}, "globex.example": {}})

	record := func(callid string) []string {
		return []string{"cmd", "history", "type", "in", "user", "andy", "phone", "79101234567", "start", "20261125T120000Z",
			"duration", "0", "callid", callid, "status", "Missed"}
	}
	for path, tok := range map[string]string{"/webhook": testCRMToken, "/webhook/acme.example": acme.crmToken, "/webhook/globex.example": globex.crmToken} {
		if st, body := postTo(t, n.base, path, tok, "h"+path, record("h1")...); st != http.StatusOK {
			t.Fatalf("history to %s: %d %s", path, st, body)
		}
	}
	sink.waitFor(t, "h1")
	acme.sink.waitFor(t, "h1")
	settle("every record delivered, globex's after one failure", map[string][3]int{
		"_default": {1, 0, 0}, "acme.example": {1, 0, 0}, "globex.example": {1, 1, 0}})
}

// helpOf returns the help text s's registry exports for the metric name.
func helpOf(t *testing.T, s *server, name string) string {
	t.Helper()
	mfs, err := s.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetHelp()
		}
	}
	return ""
}
