package webhook_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/webhook"
)

// pbxBodies are realistic webhook bodies, after docs/pbx-api.md: its webhooks
// and its field notes.
var pbxBodies = []string{
	"cmd=history&type=out&status=Success&phone=79101234567&user=user&start=20170703T121110Z&duration=124" +
		"&link=https%3A%2F%2Flink%2Ffile.mp3&crm_token=" + testToken + "&callid=B10D0EB124F4E64AFAEA-1511",
	"cmd=event&type=INCOMING&phone=79101234567&user=andy&crm_token=" + testToken + "&callid=B10D0EB124F4E64AF4EA-1511",
	"cmd=event&type=ACCEPTED&phone=89101234567&user=andy%40acme&direction=in&diversion=74950000001" +
		"&groupRealName=%D0%9E%D1%82%D0%B4%D0%B5%D0%BB&ext=101&telnum=74950000002&crm_token=" + testToken + "&callid=c-2",
	"cmd=event&type=TRANSFERRED&phone=%2B79101234567&user=g_5f1c%40acme&second_callid=c-4&crm_token=" + testToken + "&callid=c-3",
	"cmd=contact&phone=79101234567&callid=B10D0EB124F4E64AF4EA-1511&crm_token=" + testToken,
	"cmd=contact&phone=79990000000&diversion=74950000001&callid=c-5&crm_token=" + testToken,
	"cmd=history&type=in&status=missed&phone=79101234567&user=pbx&start=20240229T235959Z&duration=0" +
		"&missedStatus=NoAnswer&wait=12&z-flag=1&crm_token=" + testToken + "&callid=c-6",
	"cmd=rating&callid=c-6&rating=5&phone=79101234567&user=andy&crm_token=" + testToken,
	"cmd=webhook&type=sipregs_error&user=andy&crm_token=" + testToken,
	"cmd=event&type=OUTGOING&phone=79101234567&user=andy&callid=c-7&crm_token=wrong",
	"cmd=event&cmd=event&type=INCOMING&phone=79101234567&user=andy&callid=c-8&crm_token=" + testToken,
	"cmd=event&type=INCOMING&phone=7910%FF&user=andy&callid=c-9&crm_token=" + testToken,
	"cmd=history&type=in&status=Success&phone=1&start=20170703T121110Z&duration=-1&callid=c&crm_token=" + testToken,
	"",
}

func FuzzParseBody(f *testing.F) {
	mp, mpType := fields{"cmd": "event", "type": "INCOMING", "phone": "79101234567", "callid": "c-1"}.multipart()
	for _, b := range pbxBodies {
		f.Add(formType, []byte(b))
	}
	f.Add("", []byte("cmd=event&a=1&a=2"))
	f.Add("application/json", []byte(`{"cmd":"event","type":"INCOMING","duration":124,"ok":true,"x":null}`))
	f.Add("application/json; charset=utf-8", []byte(`{"cmd":"event","cmd":"event"}`))
	f.Add("application/json", []byte(`{"a":{"b":[1]}}`))
	f.Add(mpType, []byte(mp))
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n\xff\r\n--b--\r\n"))
	f.Add("text/plain", []byte("cmd=event"))

	const max = 4 << 10 // small, so the fuzzer reaches the limit too
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		form, err := webhook.ParseBody(contentType, bytes.NewReader(body), max)
		if len(body) > max {
			if !errors.Is(err, webhook.ErrTooLarge) {
				t.Fatalf("%d-byte body: err %v, want ErrTooLarge", len(body), err)
			}
			return
		}
		if err != nil {
			if form != nil {
				t.Errorf("error %v came with a form %v", err, form)
			}
			if !errors.Is(err, webhook.ErrBadBody) {
				t.Fatalf("error %v wraps neither sentinel", err)
			}
			return
		}
		if form == nil {
			t.Fatal("nil form without an error")
		}
		for k, v := range form {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("invalid UTF-8 in field %q = %q", k, v)
			}
		}
		// A form body round-trips: what was read, written canonically,
		// reads back the same.
		if mt, _, _ := mime.ParseMediaType(contentType); contentType == "" || mt == formType {
			vs := url.Values{}
			for k, v := range form {
				vs.Set(k, v)
			}
			again, err := webhook.ParseBody(formType, bytes.NewReader([]byte(vs.Encode())), 1<<20)
			if err != nil || !maps.Equal(again, form) {
				t.Fatalf("re-encoded form %q read as %v, %v; want %v", vs.Encode(), again, err, form)
			}
		}
	})
}

func FuzzWebhook(f *testing.F) {
	for _, b := range pbxBodies {
		f.Add([]byte(b))
	}
	dir := newTestDirectory(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := webhook.New(webhook.Config{CRMToken: testToken, ContactBudget: time.Second},
			memory.New(memory.Config{}), dir, zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		r.Header.Set("Content-Type", formType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d for %q", w.Code, body)
		}
		if mt, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type")); mt != "application/json" {
			t.Fatalf("Content-Type %q", w.Header().Get("Content-Type"))
		}
		var answer map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil {
			t.Fatalf("answer %q is not a JSON object: %v", w.Body, err)
		}
		_, hasError := answer["error"]
		if (w.Code == http.StatusOK) == hasError {
			t.Fatalf("status %d with answer %s", w.Code, w.Body)
		}
		switch w.Code {
		case http.StatusBadRequest:
			if answer["error"] != "Invalid parameters" {
				t.Fatalf("400 answer %s", w.Body)
			}
		case http.StatusUnauthorized:
			if answer["error"] != "Invalid token" {
				t.Fatalf("401 answer %s", w.Body)
			}
		}
	})
}
