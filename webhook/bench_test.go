package webhook_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/webhook"
)

// benchEvent is a typical PBX event webhook, as the PBX posts it.
func benchEvent(callID string) string {
	return "cmd=event&type=INCOMING&phone=79101234567&diversion=74950000000&user=andy" +
		"&groupRealName=Sales&ext=101&telnum=74951112233&callid=" + callID + "&crm_token=" + testToken
}

// BenchmarkParseEvent: decoding and validating one event webhook's body.
func BenchmarkParseEvent(b *testing.B) {
	body := benchEvent("bench-call-1")
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		f, err := webhook.ParseBody(formType, strings.NewReader(body), 64<<10)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := webhook.ParseEvent(f, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleEvent: one event webhook through the whole handler (token,
// parse, validate, state machine, publish on the embedded broker), without
// the network. Each iteration is a new call, as under load.
func BenchmarkHandleEvent(b *testing.B) {
	// The node's logger at warn, as under load: per-webhook lines are info.
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.WarnLevel))
	h, err := webhook.New(webhook.Config{CRMToken: testToken}, memory.New(memory.Config{}), nil, log, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		req := httptest.NewRequest(http.MethodPost, "/webhook", strings.NewReader(benchEvent("bench-"+strconv.Itoa(i))))
		req.Header.Set("Content-Type", formType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}
