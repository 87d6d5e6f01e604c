package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/callpop/callpop/webhook"
)

// TestWrongCRMTokensBlockTheirSourceAddress: webhooks with a wrong crm_token
// from one address (the X-Forwarded-For of a trusted proxy) are answered 401
// up to webhook.DefaultLoginFailures, then 429 — the right token from that
// address too — while the PBX at another address is served; the refusals
// are counted with reason "auth". (The refill is tested on fake time in
// webhook/login_test.go.)
func TestWrongCRMTokensBlockTheirSourceAddress(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "--trusted-proxies", "127.0.0.1"), nil)
	send := func(from, token string) (int, string) {
		t.Helper()
		form := url.Values{"cmd": {"event"}, "type": {"INCOMING"}, "user": {"andy"}, "callid": {"lg-1"},
			"phone": {"79101234567"}, "crm_token": {token}}
		req, _ := http.NewRequest(http.MethodPost, n.base+"/webhook", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	const attacker, pbx = "198.51.100.7", "192.0.2.10"

	for i := range 30 {
		st, body := send(attacker, "guess-"+string(rune('a'+i)))
		want, wantBody := http.StatusUnauthorized, `{"error":"Invalid token"}`
		if i >= webhook.DefaultLoginFailures {
			want, wantBody = http.StatusTooManyRequests, `{"error":"Too many requests"}`
		}
		if st != want || body != wantBody {
			t.Fatalf("wrong token %d: %d %s, want %d %s", i, st, body, want, wantBody)
		}
	}
	if st, body := send(attacker, testCRMToken); st != http.StatusTooManyRequests {
		t.Fatalf("right token from the blocked address: %d %s, want 429", st, body)
	}
	if st, body := send(pbx, testCRMToken); st != http.StatusOK {
		t.Fatalf("right token from another address: %d %s, want 200", st, body)
	}

	resp, err := http.Get(n.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	metrics, _ := io.ReadAll(resp.Body)
	const line = `callpop_requests_refused_total{endpoint="webhook",reason="auth"} 21`
	if !strings.Contains(string(metrics), line) {
		t.Fatalf("metrics lack %s", line)
	}
}
