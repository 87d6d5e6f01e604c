package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestRefusedTokensTicketsAndOriginsAreCountedAndLoggedWithoutTheToken: a
// CRM whose widget says "token refused" finds the reason in the node's info
// log and in /metrics — and never the token.
func TestRefusedTokensTicketsAndOriginsAreCountedAndLoggedWithoutTheToken(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := testConfig(t, "--allowed-origins", "https://crm.example.com")
	s, err := newServer(cfg, zap.New(core), serverOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n := serveNode(t, s, ln)

	expired, err := s.jwt.Mint("andy", -1)
	if err != nil {
		t.Fatal(err)
	}
	if st := dialStatus(t, n.wsURL("token="+expired), nil); st != http.StatusUnauthorized {
		t.Fatalf("expired token: %d", st)
	}
	if st := dialStatus(t, n.wsURL("ticket="+strings.Repeat("B", 43)), nil); st != http.StatusUnauthorized {
		t.Fatalf("unknown ticket: %d", st)
	}
	h := http.Header{"Origin": {"https://evil.example.org"}}
	if st := dialStatus(t, n.wsURL("token="+n.token("andy")), h); st != http.StatusForbidden {
		t.Fatalf("foreign origin: %d", st)
	}
	req, _ := http.NewRequest(http.MethodGet, n.base+"/api/calls", nil)
	req.Header.Set("Authorization", "Bearer "+expired)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	for _, c := range []struct {
		endpoint, reason string
	}{{"ws", "token"}, {"ws", "ticket"}, {"ws", "origin"}, {"api", "token"}} {
		if got := testutil.ToFloat64(s.refusals.total.WithLabelValues(c.endpoint, c.reason)); got != 1 {
			t.Errorf("callpop_requests_refused_total{endpoint=%q,reason=%q} = %v, want 1", c.endpoint, c.reason, got)
		}
		found := false
		for _, e := range logs.FilterLoggerName("refused").All() {
			m := e.ContextMap()
			found = found || (e.Level == zapcore.InfoLevel && m["endpoint"] == c.endpoint && m["reason"] == c.reason)
		}
		if !found {
			t.Errorf("no info line for a %s refused at %s", c.reason, c.endpoint)
		}
	}
	for _, e := range logs.All() {
		line := e.Message + " " + fmt.Sprint(e.ContextMap())
		if strings.Contains(line, strings.Split(expired, ".")[2]) { // the signature, the token's secret part
			t.Errorf("a log line carries the token: %s", line)
		}
	}
}
