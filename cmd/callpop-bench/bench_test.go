//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package when a run leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testCRMToken  = "bench-test-crm-token"
	testJWTSecret = "bench-test-jwt-secret-0123456789abcdef"
)

// startNode builds cmd/callpop and runs `callpop serve` on a free loopback
// port, with args added; the node is killed when the test ends.
func startNode(t *testing.T, args ...string) (base string, pid int) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "callpop")
	build := exec.Command("go", "build", "-o", bin, "./cmd/callpop")
	build.Dir = filepath.Join("..", "..")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building callpop: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var logs bytes.Buffer
	cmd := exec.Command(bin, append([]string{"serve", "--addr", addr}, args...)...)
	cmd.Env = append(os.Environ(), "CALLPOP_CRM_TOKEN="+testCRMToken, "CALLPOP_JWT_SECRET="+testJWTSecret,
		"CALLPOP_REDIS_URL=", "CALLPOP_LOG_LEVEL=warn",
		// The per-address limits, where the node has them, would measure
		// the limiter: 50 sessions come from 50 addresses, but every
		// webhook from one.
		"CALLPOP_CONNECT_RATE=0", "CALLPOP_WEBHOOK_RATE=0")
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	base = "http://" + addr
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, cmd.Process.Pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("callpop did not come up on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// bench runs the tool with args against base and returns its JSON report.
func bench(t *testing.T, base string, args ...string) report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out bytes.Buffer
	all := append([]string{"--target", base, "--crm-token", testCRMToken, "--jwt-secret", testJWTSecret,
		"--json", "--settle", "100ms", "--drain", "5s", "--timeout", "60s"}, args...)
	err := run(ctx, all, &out)
	var rep report
	line := strings.TrimSpace(out.String())
	if jerr := json.Unmarshal([]byte(line), &rep); jerr != nil {
		t.Fatalf("run %v: %v; output %q is not a JSON report: %v", args, err, line, jerr)
	}
	if err != nil {
		t.Fatalf("run %v: %v\n%s", args, err, line)
	}
	return rep
}

func checkDelivery(t *testing.T, rep report) {
	t.Helper()
	if rep.Connected != rep.Sessions || rep.DialErrors != 0 || rep.NoHello != 0 {
		t.Errorf("connected %d of %d sessions (dial errors %d, no hello %d)", rep.Connected, rep.Sessions, rep.DialErrors, rep.NoHello)
	}
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.Delivered != rep.Expected || rep.Expected == 0 {
		t.Errorf("delivered %d of %d expected frames, lost %d, duplicated %d", rep.Delivered, rep.Expected, rep.Lost, rep.Duplicated)
	}
	if rep.OutOfOrder != 0 || rep.Unexpected != 0 || rep.Misrouted != 0 || rep.Disconnects != 0 {
		t.Errorf("out of order %d, unexpected %d, misrouted %d, disconnects %d", rep.OutOfOrder, rep.Unexpected, rep.Misrouted, rep.Disconnects)
	}
	if len(rep.HTTPErrors) != 0 {
		t.Errorf("HTTP errors: %v", rep.HTTPErrors)
	}
	if !rep.OK {
		t.Error("report not OK")
	}
}

func TestBenchAgainstRealNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a callpop node")
	}
	base, pid := startNode(t)

	t.Run("direct", func(t *testing.T) {
		rep := bench(t, base, "--mode", "direct", "--sessions", "50", "--users", "5", "--rate", "100",
			"--duration", "2s", "--server-pid", strconv.Itoa(pid), "--watch-pid", "node="+strconv.Itoa(pid))
		checkDelivery(t, rep)
		// The watched process is reported by its name (its CPU may round to 0).
		if _, ok := rep.WatchLoadCPUPct["node"]; !ok {
			t.Errorf("watch_load_cpu_pct %v: no entry for node", rep.WatchLoadCPUPct)
		}
		// 200 INCOMINGs, each to the 10 sessions of its user.
		if rep.Webhooks < 190 || rep.Expected != rep.Webhooks*10 {
			t.Errorf("webhooks %d, expected frames %d: want ~200 and 10 frames each", rep.Webhooks, rep.Expected)
		}
		if rep.Latency.N != uint64(rep.Delivered) || rep.Latency.P50 <= 0 || rep.Latency.Max < rep.Latency.P50 {
			t.Errorf("latency %+v for %d frames", rep.Latency, rep.Delivered)
		}
		if rep.ServerRSSAfterKiB <= 0 || rep.ServerRSSBeforeKiB <= 0 {
			t.Errorf("server RSS not read: %d → %d KiB", rep.ServerRSSBeforeKiB, rep.ServerRSSAfterKiB)
		}
	})

	t.Run("group", func(t *testing.T) {
		// 10 users, G=4: each call is 4 INCOMINGs and one ACCEPTED, 20 calls/s.
		rep := bench(t, base, "--mode", "group", "--group", "4", "--sessions", "50", "--users", "10",
			"--rate", "100", "--duration", "2s", "--metrics-url", base+"/metrics")
		checkDelivery(t, rep)
		inc, acc, canc := rep.ByEvent["INCOMING"], rep.ByEvent["ACCEPTED"], rep.ByEvent["CANCELLED"]
		if inc[0] == 0 || acc[0] == 0 || canc[0] != 3*acc[0] {
			t.Errorf("by event %v: want every call's other 3 managers CANCELLED", rep.ByEvent)
		}
		if rep.AcceptLatency == nil || rep.AcceptLatency.N == 0 {
			t.Error("no ACCEPTED → CANCELLED latency")
		}
		if rep.ServerRSSAfterKiB <= 0 {
			t.Error("server RSS not read from /metrics")
		}
	})

	t.Run("storm", func(t *testing.T) {
		rep := bench(t, base, "--mode", "storm", "--sessions", "50", "--users", "5", "--rate", "100",
			"--storm-rate", "50")
		checkDelivery(t, rep)
		if rep.StormReconnected != 50 || rep.StormSeconds <= 0 || rep.ResumeMisses != 0 || rep.NoResumePoint != 0 {
			t.Errorf("storm: %d back in %.3fs, resume misses %d, no resume point %d",
				rep.StormReconnected, rep.StormSeconds, rep.ResumeMisses, rep.NoResumePoint)
		}
		if rep.StormEvents == 0 || rep.StormLost != 0 || rep.StormDelivered != rep.StormExpected {
			t.Errorf("storm events %d: %d of %d frames delivered", rep.StormEvents, rep.StormDelivered, rep.StormExpected)
		}
	})
}

func TestWatchPIDFlag(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"7", "=7", "redis=", "redis=x", "redis=-1"} {
		if _, err := parseOptions([]string{"--watch-pid", bad}, io.Discard); err == nil || !strings.Contains(err.Error(), "name=pid") {
			t.Errorf("--watch-pid %q: err %v, want one asking for name=pid", bad, err)
		}
	}
	o, err := parseOptions([]string{"--watch-pid", "shard1=10,shard2=11",
		"--crm-token", "bench-crm-token-16", "--jwt-secret", strings.Repeat("j", 32)}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.watchPIDs) != 2 || o.watchPIDs[1] != (namedPID{"shard2", 11}) {
		t.Errorf("watch pids %v", o.watchPIDs)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, target := range []string{"http://10.0.0.1:8080", "http://example.com:80", "http://[::1]:8080", "http://127.0.0.1"} {
		_, err := parseOptions([]string{"--target", target, "--crm-token", "x", "--jwt-secret", "y"}, &bytes.Buffer{})
		if err == nil {
			t.Errorf("target %s accepted", target)
		}
	}
	o, err := parseOptions([]string{"--target", "http://localhost:9,http://127.0.0.2:8081", "--crm-token", "x", "--jwt-secret", "y"}, &bytes.Buffer{})
	if err != nil || len(o.targets) != 2 || o.targets[0].Host != "127.0.0.1:9" {
		t.Fatalf("loopback targets: %v %v", o, err)
	}
}

func TestCallIDAndHistogram(t *testing.T) {
	r := &runner{tag: "t1"}
	seq, ns, ok := r.parseCallID([]byte(r.callID(42, 1234567890)))
	if !ok || seq != 42 || ns != 1234567890 {
		t.Fatalf("callid round trip: %d %d %v", seq, ns, ok)
	}
	if _, _, ok := r.parseCallID([]byte("cother-1-2")); ok {
		t.Fatal("another run's callid accepted")
	}
	var h hist
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(c.q)
		if d := got - c.want; d < -c.want/50 || d > c.want/50 {
			t.Errorf("q%.2f = %v, want %v ± 2%%", c.q, got, c.want)
		}
	}
	for v := int64(0); v < 1<<20; v += 997 {
		b := bucketOf(v)
		if lowOf(b) > v || lowOf(b+1) <= v {
			t.Fatalf("value %d in bucket %d [%d, %d)", v, b, lowOf(b), lowOf(b+1))
		}
	}
}

func TestFieldExtraction(t *testing.T) {
	msg := []byte(`{"type":"call","id":"17-3","event":"CANCELLED","callid":"cx-1-2","phone":"79","user":"u3","direction":"in","contact":{"name":"A","responsible":"b"},"reason":"answered_elsewhere","answered_by":"u4"}`)
	for k, want := range map[string]string{"id": "17-3", "event": "CANCELLED", "callid": "cx-1-2", "user": "u3", "reason": "answered_elsewhere"} {
		if got := string(field(msg, k)); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// TestBenchTenantsMode runs the tool's --tenants mode against a real node
// serving the registry the tool wrote: three tenants with the same logins,
// every frame at the sessions of the tenant its webhook was posted to.
func TestBenchTenantsMode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a callpop node")
	}
	file := filepath.Join(t.TempDir(), "tenants.json")
	if err := run(context.Background(), []string{"--tenants", "3", "--users", "6", "--sessions", "30",
		"--crm-token", testCRMToken, "--jwt-secret", testJWTSecret, "--write-tenants", file}, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tenants file: %v, %v", fi, err)
	}
	base, _ := startNode(t, "--tenants-file", file)

	t.Run("direct", func(t *testing.T) {
		rep := bench(t, base, "--tenants", "3", "--sessions", "30", "--users", "6", "--rate", "100", "--duration", "2s")
		checkDelivery(t, rep)
		// 200 INCOMINGs, each to the 5 sessions of its user in its tenant
		// only: u0 of t0.bench, t1.bench and t2.bench are three users.
		if rep.Tenants != 3 || rep.Webhooks < 190 || rep.Expected != rep.Webhooks*5 {
			t.Errorf("tenants %d, webhooks %d, expected frames %d: want ~200 and 5 frames each", rep.Tenants, rep.Webhooks, rep.Expected)
		}
	})
	t.Run("group", func(t *testing.T) {
		rep := bench(t, base, "--tenants", "3", "--mode", "group", "--group", "2", "--sessions", "30", "--users", "6",
			"--rate", "60", "--duration", "2s")
		checkDelivery(t, rep)
		if canc, acc := rep.ByEvent["CANCELLED"], rep.ByEvent["ACCEPTED"]; acc[0] == 0 || canc[0] != acc[0] {
			t.Errorf("by event %v: want every call's other manager CANCELLED", rep.ByEvent)
		}
	})

	// The node counted every tenant's webhooks and sessions under its own
	// label, and refused none.
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var metrics bytes.Buffer
	_, _ = metrics.ReadFrom(resp.Body)
	for j := range 3 {
		ok := fmt.Sprintf(`callpop_tenant_webhooks_total{status="200",tenant="%s"}`, tenantID(j))
		if !strings.Contains(metrics.String(), ok) {
			t.Errorf("no %s in /metrics", ok)
		}
	}
	if strings.Contains(metrics.String(), `status="401"`+",tenant=\"t") {
		t.Error("a tenant's webhook was refused")
	}
}

// TestFrameOfAnotherTenantIsMisrouted: a frame for the same login in
// another tenant is counted as misrouted, never as delivered.
func TestFrameOfAnotherTenantIsMisrouted(t *testing.T) {
	o := &options{tenants: 2, users: 2, userPrefix: "u", crmToken: "c", jwtSecret: "j"}
	r := newRunner(o, func(string, ...any) {})
	r.calls = make([]callStat, 1)
	seq, _ := r.newCall(phaseLoad, 0) // posted to tenant 0's u0
	r.calls[seq].expected[evIncoming].Store(1)
	other := &session{user: 1, name: r.userName(1)} // tenant 1's u0
	if other.name != "u0" {
		t.Fatalf("user 1 is %q, want tenant 1's u0", other.name)
	}
	msg := fmt.Sprintf(`{"type":"call","id":"17-1","event":"INCOMING","callid":"%s","user":"u0"}`, r.callID(seq, time.Now().UnixNano()))
	r.frame(other, []byte(msg), time.Now())
	if r.misrouted.Load() != 1 || r.calls[seq].got[evIncoming].Load() != 0 {
		t.Fatalf("misrouted %d, delivered %d: want the frame counted as misrouted", r.misrouted.Load(), r.calls[seq].got[evIncoming].Load())
	}
	own := &session{user: 0, name: r.userName(0)}
	msg = strings.Replace(msg, `"17-1"`, `"17-2"`, 1)
	r.frame(own, []byte(msg), time.Now())
	if r.calls[seq].got[evIncoming].Load() != 1 {
		t.Fatal("the frame at its own tenant's session was not counted")
	}
}

func TestTenantsOptionsAreChecked(t *testing.T) {
	base := []string{"--crm-token", "x", "--jwt-secret", "y"}
	for name, args := range map[string][]string{
		"UsersNotAMultiple":     {"--tenants", "3", "--users", "10", "--sessions", "10"},
		"GroupAcrossTenants":    {"--tenants", "5", "--users", "10", "--sessions", "10", "--mode", "group", "--group", "3"},
		"WriteWithoutTenants":   {"--write-tenants", "/nonexistent/t.json"},
		"CentrifugoWithTenants": {"--tenants", "2", "--users", "4", "--sessions", "4", "--server", "centrifugo", "--api-key", "k"},
		"NegativeTenants":       {"--tenants", "-1"},
	} {
		if _, err := parseOptions(append(args, base...), &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "tenants") {
			t.Errorf("%s: %v: %v, want a --tenants error", name, args, err)
		}
	}
	o, err := parseOptions(append([]string{"--tenants", "5", "--users", "10", "--sessions", "20", "--mode", "group", "--group", "2"}, base...), &bytes.Buffer{})
	if err != nil || o.usersPerTenant() != 2 || o.tenantOf(9) != 4 {
		t.Fatalf("5 tenants of 2 users: %v, %v", o, err)
	}
}
