package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/tenant"
)

// BenchmarkTenantWebhookUnderFlood: one calm tenant's webhooks (an INCOMING
// each, over loopback HTTP, one at a time) while another tenant floods the
// node from 4 connections as fast as it answers: with no flood, with the
// flooding tenant held to 100 webhooks/s (Limits.WebhookRate), and with it
// unlimited. Reports the calm tenant's p50 and p99 latency and how many
// flood webhooks a second the node answered 200 and 429.
func BenchmarkTenantWebhookUnderFlood(b *testing.B) {
	for _, mode := range []string{"none", "limited", "unlimited"} {
		b.Run("flood="+mode, func(b *testing.B) {
			floodT := &tenant.Tenant{ID: "flood.example", Enabled: true, CRMTokens: []tenant.Secret{{Value: "flood-token-0123456789"}},
				Limits: tenant.Limits{WebhookRate: map[string]float64{"limited": 100, "unlimited": 1e9, "none": 100}[mode]}}
			calmT := &tenant.Tenant{ID: "calm.example", Enabled: true, CRMTokens: []tenant.Secret{{Value: "calm-token-0123456789"}},
				Limits: tenant.Limits{WebhookRate: 1e9}} // the calm tenant measured, not limited
			cfg := testConfig(&testing.T{}, "--webhook-rate", "0", "--log-level", "error")
			s, err := newServer(cfg, zap.NewNop(), serverOptions{tenants: tenant.NewStatic(floodT, calmT)})
			if err != nil {
				b.Fatal(err)
			}
			n := serveBenchNode(b, s)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
			post := func(path, token, callid string) int {
				form := url.Values{"crm_token": {token}, "cmd": {"event"}, "type": {"INCOMING"}, "user": {"andy"},
					"callid": {callid}, "phone": {"79101234567"}}
				resp, err := client.Post(n+path, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
				if err != nil {
					return 0
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			var stop atomic.Bool
			var ok, limited atomic.Int64
			var wg sync.WaitGroup
			if mode != "none" {
				for w := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; !stop.Load(); i++ {
							switch post("/webhook/flood.example", "flood-token-0123456789", fmt.Sprintf("f%d-%d", w, i)) {
							case http.StatusOK:
								ok.Add(1)
							case http.StatusTooManyRequests:
								limited.Add(1)
							}
						}
					}()
				}
				time.Sleep(200 * time.Millisecond) // the flood is under way
				ok.Store(0)
				limited.Store(0)
			}
			lat := make([]time.Duration, 0, b.N)
			start := time.Now()
			i := 0
			for b.Loop() {
				i++
				t0 := time.Now()
				if st := post("/calm.example", "calm-token-0123456789", fmt.Sprintf("c%d", i)); st != http.StatusOK {
					b.Fatalf("calm tenant answered %d", st)
				}
				lat = append(lat, time.Since(t0))
			}
			elapsed := time.Since(start).Seconds()
			stop.Store(true)
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			b.ReportMetric(float64(ok.Load())/elapsed, "flood-200/s")
			b.ReportMetric(float64(limited.Load())/elapsed, "flood-429/s")
		})
	}
}

// serveBenchNode serves s on a loopback port until the benchmark ends.
func serveBenchNode(b *testing.B, s *server) string {
	srv := s.httpServer()
	ln, err := netListen()
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() {
		_ = srv.Close()
		_ = s.hub.Shutdown(context.Background())
		s.close()
	})
	return "http://" + ln.Addr().String()
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// BenchmarkTenantWebhookLookup: one INCOMING webhook through the node's
// handler (no network) for one of n tenants in turn, on the embedded
// broker: what finding the tenant, its crm_token check and its state cost
// at 1 and 10,000 tenants. Reports the heap one tenant's run-time state
// takes (its webhook scope, rate limiter, failed-login budget, origins).
func BenchmarkTenantWebhookLookup(b *testing.B) {
	for _, n := range []int{1, 10_000} {
		b.Run(fmt.Sprintf("tenants=%d", n), func(b *testing.B) {
			ts := make([]*tenant.Tenant, n)
			for i := range ts {
				ts[i] = &tenant.Tenant{ID: fmt.Sprintf("t%05d.example", i), Enabled: true,
					CRMTokens: []tenant.Secret{{Value: fmt.Sprintf("token-%05d-0123456789", i)}},
					Limits:    tenant.Limits{WebhookRate: 1e9}}
			}
			cfg := testConfig(&testing.T{}, "--webhook-rate", "0", "--log-level", "error")
			s, err := newServer(cfg, zap.NewNop(), serverOptions{tenants: tenant.NewStatic(ts...)})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.hub.Shutdown(context.Background()); s.close() })
			bodies := make([]string, n)
			for i := range bodies {
				bodies[i] = url.Values{"crm_token": {ts[i].CRMTokens[0].Value}, "cmd": {"event"}, "type": {"INCOMING"},
					"user": {"andy"}, "callid": {"c"}, "phone": {"79101234567"}}.Encode()
			}
			serve := func(i int) {
				req := httptest.NewRequest(http.MethodPost, "/webhook/"+ts[i%n].ID, strings.NewReader(bodies[i%n]))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				w := httptest.NewRecorder()
				s.handler.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("tenant %d: %d %s", i%n, w.Code, w.Body)
				}
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range n { // every tenant's run-time state built, as its first webhook does
				s.tenants.get(ts[i].ID)
				s.tenants.guarded(ts[i].ID)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			for i := range n { // and every tenant's call in the broker
				serve(i)
			}
			i := 0
			for b.Loop() {
				serve(i)
				i++
			}
			if n > 1 { // one tenant's bytes are lost in the GC's noise
				b.ReportMetric((float64(after.HeapAlloc)-float64(before.HeapAlloc))/float64(n), "heap-B/tenant")
			}
		})
	}
}
