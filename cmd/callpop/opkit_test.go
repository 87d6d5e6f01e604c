package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"

	"github.com/callpop/callpop/internal/redistest"
)

// port returns the port of n's listener.
func (n *node) port() string {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(n.base, "http://"))
	return p
}

// TestHealthcheckExitsZeroWhenHealthyAndOneOtherwise runs `callpop
// healthcheck` as a container runtime would — a process whose exit status is
// the verdict — against a real node.
func TestHealthcheckExitsZeroWhenHealthyAndOneOtherwise(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t), nil)
	env := map[string]string{"CALLPOP_ADDR": ":" + n.port()}
	if code, out := runMain(t, env, "healthcheck"); code != 0 || out != "" {
		t.Fatalf("healthy node: exit %d, %q", code, out)
	}
	if code, out := runMain(t, env, "healthcheck", "--ready"); code != 0 {
		t.Fatalf("ready node: exit %d, %q", code, out)
	}
	if code, out := runMain(t, nil, "healthcheck", "--url", n.base+"/readyz"); code != 0 {
		t.Fatalf("--url: exit %d, %q", code, out)
	}

	n.srv.draining.Store(true) // as after SIGTERM: alive, not ready
	if code, out := runMain(t, env, "healthcheck"); code != 0 {
		t.Fatalf("draining node's /healthz: exit %d, %q", code, out)
	}
	code, out := runMain(t, env, "healthcheck", "--ready")
	if code != 1 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "/readyz") || !strings.Contains(out, "503") {
		t.Fatalf("draining node's /readyz: exit %d, %q; want 1 and one line naming /readyz and 503", code, out)
	}

	n.stop()
	code, out = runMain(t, env, "healthcheck")
	if code != 1 || strings.Count(out, "\n") != 1 {
		t.Fatalf("stopped node: exit %d, %q; want 1 and one line", code, out)
	}
	if code, _ := runMain(t, map[string]string{"CALLPOP_ADDR": "no-port"}, "healthcheck"); code != 2 {
		t.Fatalf("bad CALLPOP_ADDR: exit %d, want 2", code)
	}
}

// TestHealthcheckSpeaksTLSWhenTheNodeDoes: with CALLPOP_TLS_CERT set (the
// node's own environment) the check asks over https and accepts the node's
// certificate on loopback; a --url to a non-loopback name would verify it.
func TestHealthcheckSpeaksTLSWhenTheNodeDoes(t *testing.T) {
	t.Parallel()
	cert, key, _ := selfSigned(t)
	n := startNode(t, testConfig(t, "--tls-cert", cert, "--tls-key", key), nil)
	if code, out := runMain(t, map[string]string{"CALLPOP_ADDR": ":" + n.port()}, "healthcheck"); code != 1 {
		t.Fatalf("plain HTTP to a TLS node: exit %d, %q; want 1", code, out)
	}
	env := map[string]string{"CALLPOP_ADDR": ":" + n.port(), "CALLPOP_TLS_CERT": cert}
	if code, out := runMain(t, env, "healthcheck", "--ready"); code != 0 {
		t.Fatalf("TLS node: exit %d, %q", code, out)
	}
}

func TestHealthURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr  string
		https bool
		url   string
		ready bool
		want  string
	}{
		{":8080", false, "", false, "http://127.0.0.1:8080/healthz"},
		{"0.0.0.0:9000", true, "", true, "https://127.0.0.1:9000/readyz"},
		{"[::]:8080", false, "", false, "http://127.0.0.1:8080/healthz"},
		{"localhost:8080", false, "", false, "http://127.0.0.1:8080/healthz"},
		{"10.1.2.3:8080", false, "", false, "http://10.1.2.3:8080/healthz"},
		{":8080", false, "https://callpop.example.com", true, "https://callpop.example.com/readyz"},
	} {
		u, err := healthURL(c.addr, c.https, c.url, c.ready)
		if err != nil || u.String() != c.want {
			t.Errorf("healthURL(%q, %v, %q, %v) = %v, %v; want %s", c.addr, c.https, c.url, c.ready, u, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://x", "127.0.0.1:8080", "http://"} {
		if _, err := healthURL(":8080", false, bad, false); err == nil {
			t.Errorf("--url %q accepted", bad)
		}
	}
}

// TestVersionPrintsBuildInfo: `callpop version` and `callpop --version` name
// the version, the Go toolchain and the VCS revision; an -ldflags stamp wins.
func TestVersionPrintsBuildInfo(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		code, out := runMain(t, nil, arg)
		if code != 0 || !strings.HasPrefix(out, "callpop ") || !strings.Contains(out, runtime.Version()) ||
			!strings.Contains(out, "revision ") || strings.Count(out, "\n") != 1 {
			t.Errorf("callpop %s: exit %d, %q", arg, code, out)
		}
	}
	version, revision = "v1.2.3", "abc123"
	defer func() { version, revision = "", "" }()
	var out bytes.Buffer
	if err := run(t.Context(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if want := "callpop v1.2.3 (" + runtime.Version() + ", revision abc123)\n"; out.String() != want {
		t.Fatalf("stamped version: %q, want %q", out.String(), want)
	}
}

// TestFreshNodeExportsEverySeriesAtZero: before anything happens a node's
// /metrics already lists every labelled counter's known series at 0 (and
// callpop_build_info at 1), so rate() and absent() alerts
// (deploy/prometheus/alerts.yaml) work from a node's first scrape.
func TestFreshNodeExportsEverySeriesAtZero(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	n := startNode(t, testConfig(t, "--redis-url", rs.URL(), "--history-forward-url", "http://127.0.0.1:1/records"), nil)
	resp, err := http.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := map[string]bool{}
	for _, l := range strings.Split(string(body), "\n") {
		lines[l] = true
	}
	var want []string
	for _, cmd := range []string{"event", "contact", "history", "rating", "webhook", "unknown"} {
		for _, status := range []string{"200", "400", "401", "403", "405", "413", "429", "503"} {
			want = append(want, `callpop_webhooks_total{cmd="`+cmd+`",status="`+status+`"} 0`)
		}
		want = append(want, `callpop_webhook_duration_seconds_count{cmd="`+cmd+`"} 0`)
	}
	for _, op := range []string{"update", "receive"} {
		want = append(want, `callpop_broker_errors_total{op="`+op+`"} 0`)
	}
	for _, r := range []string{"hit", "miss"} {
		want = append(want, `callpop_resumes_total{result="`+r+`"} 0`)
	}
	for _, r := range []string{"slow", "ping", "flood"} {
		want = append(want, `callpop_sessions_dropped_total{reason="`+r+`"} 0`)
	}
	want = append(want, `callpop_sessions_refused_total{reason="too_many"} 0`,
		`callpop_requests_refused_total{endpoint="webhook",reason="auth"} 0`)
	for _, s := range []string{"received", "written", "shown"} {
		want = append(want, `callpop_frame_delay_seconds_count{stage="`+s+`"} 0`)
	}
	for _, code := range []string{"network", "429", "500", "502", "503", "504"} {
		want = append(want, `callpop_forward_retries_total{code="`+code+`"} 0`)
	}
	for _, l := range want {
		if !lines[l] {
			t.Errorf("a fresh node's /metrics lacks %s", l)
		}
	}
	b := readBuildInfo()
	info := `callpop_build_info{goversion="` + b.GoVersion + `",revision="` + b.Revision + `",version="` + b.Version + `"} 1`
	if !lines[info] {
		t.Errorf("no %s in:\n%s", info, grepLines(string(body), "callpop_build_info"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
