package webhook_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/internal/guard"
	"github.com/callpop/callpop/webhook"
)

// TestWrongTokensSpendTheAddressesFailureBudget: behind guard.Wrap, as
// cmd/callpop serves it, 401s charge the sender's failure budget; past
// DefaultLoginFailures every webhook from that address, even with the right
// token, is answered 429 until a token refills (fake time), while other
// addresses go on.
func TestWrongTokensSpendTheAddressesFailureBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		failures := guard.NewFailures(webhook.DefaultLoginFailures/60.0, webhook.DefaultLoginFailures, 0)
		h, err := webhook.New(webhook.Config{CRMToken: testToken,
			OnInvalidToken: func(r *http.Request) { failures.Fail(guard.ClientIP(r, nil)) }},
			memory.New(memory.Config{}), nil, zaptest.NewLogger(t), nil)
		if err != nil {
			t.Fatal(err)
		}
		refused := 0
		srv := guard.Wrap(guard.Config{Failures: failures, OnRefuse: func(string) { refused++ }}, h)
		inHeader := false // the token in X-CRM-Token instead of the body
		send := func(peer, token string) (int, string) {
			f := eventFields("c1").with("crm_token", token)
			if inHeader {
				f = f.without("crm_token")
			}
			r := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(f.form()))
			r.Header.Set("Content-Type", formType)
			if inHeader {
				r.Header.Set("X-CRM-Token", token)
			}
			r.RemoteAddr = peer
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, r)
			return w.Code, strings.TrimSpace(w.Body.String())
		}
		const attacker, pbx = "198.51.100.7:4000", "192.0.2.10:5000"

		for i := range 30 {
			inHeader = i%2 == 1
			st, body := send(attacker, "guess")
			switch {
			case i < webhook.DefaultLoginFailures && st != http.StatusUnauthorized:
				t.Fatalf("wrong token %d: %d %s, want 401", i, st, body)
			case i >= webhook.DefaultLoginFailures && (st != http.StatusTooManyRequests || body != `{"error":"Too many requests"}`):
				t.Fatalf("wrong token %d: %d %s, want 429", i, st, body)
			}
		}
		inHeader = false
		if st, _ := send(attacker, testToken); st != http.StatusTooManyRequests {
			t.Fatalf("right token from the blocked address: %d, want 429", st)
		}
		if st, body := send(pbx, testToken); st != http.StatusOK {
			t.Fatalf("right token from another address: %d %s", st, body)
		}
		if refused != 21 {
			t.Fatalf("%d refusals counted, want 21", refused)
		}

		time.Sleep(time.Minute / webhook.DefaultLoginFailures) // one failure's worth refills
		if st, body := send(attacker, testToken); st != http.StatusOK {
			t.Fatalf("right token after the refill: %d %s", st, body)
		}
		if st, _ := send(attacker, "guess"); st != http.StatusUnauthorized {
			t.Fatalf("wrong token after the refill: %d, want 401", st)
		}
		if st, _ := send(attacker, "guess"); st != http.StatusTooManyRequests {
			t.Fatalf("the refilled failure spent: %d, want 429", st)
		}
	})
}
