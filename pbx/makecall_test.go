package pbx_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/callpop/callpop/pbx"
)

func TestMakeCallReadsEveryCallIDForm(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body, want string
	}{
		{`{"callid":"B10D0EB124F4E64AFAEA-1511"}`, "B10D0EB124F4E64AFAEA-1511"},
		{`{"callId":"A-1"}`, "A-1"},
		{`{"call_id":"A-2"}`, "A-2"},
		{`{"id":"A-3"}`, "A-3"},
		{`{"id":1511}`, "1511"},
		{`"A-4"`, "A-4"},
		{`1512`, "1512"},
		{"B10D0EB124F4E64AFAEA-1513\r\n", "B10D0EB124F4E64AFAEA-1513"},
		{"\ufeff A-5 ", "A-5"},
	} {
		srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) })
		c := newClient(t, srv.URL, pbx.Config{})
		got, err := c.MakeCall(t.Context(), "andy", "79101234567")
		if err != nil || got != tc.want {
			t.Errorf("body %q: got %q, %v; want %q", tc.body, got, err, tc.want)
		}
	}
}

// TestMakeCallSucceedsOnEvery2xx: a 2xx means the PBX placed the call (the
// manager's phone rings), whatever the body; the id is taken from wherever
// the body offers it, and is "" when it offers none.
func TestMakeCallSucceedsOnEvery2xx(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status     int
		body, want string
	}{
		{200, `"abc"`, "abc"},
		{200, `123`, "123"},
		{200, `{"callid":"x"}`, "x"},
		{200, `{"data":{"call_id":"x"}}`, "x"},
		{200, `{"result":"ok","uuid":"x"}`, "x"},
		{200, `{"status":"ok","data":{"call":{"callId":"x"}}}`, "x"},
		{200, `{"jsonrpc":"2.0","id":7,"result":{"callid":"x"}}`, "x"},
		{200, `{"success":true,"request_id":"r-1"}`, "r-1"},
		{200, `{"id":"x","valid":"y"}`, "x"},
		{200, `{"provider":"acme"}`, ""},
		{200, "abc\nsecond line", "abc"},
		{200, "", ""},
		{200, "\r\n", ""},
		{200, "<html>\n<body>Call queued</body></html>", ""},
		{200, "OK", ""},
		{200, "OK then", ""},
		{200, `"OK"`, ""},
		{200, "{}", ""},
		{200, `{"callid":""}`, ""},
		{200, `{"callid":`, ""},
		{200, `{"callid":"has space"}`, ""},
		{200, `null`, ""},
		{200, `true`, ""},
		{200, `[1,2]`, ""},
		{200, strings.Repeat("9", 257), ""},
		{201, `{"callid":"x"}`, "x"},
		{202, "", ""},
		{204, "", ""},
	} {
		srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(tc.status)
			io.WriteString(w, tc.body)
		})
		c := newClient(t, srv.URL, pbx.Config{})
		got, err := c.MakeCall(t.Context(), "andy", "79101234567")
		if err != nil || got != tc.want {
			t.Errorf("%d %q: got %q, %v; want %q and no error", tc.status, tc.body, got, err, tc.want)
		}
	}
}

// TestMakeCallCutOffAfter200IsPlaced: the PBX answered 200 and the
// connection broke in the body: the call rings all the same.
func TestMakeCallCutOffAfter200IsPlaced(t *testing.T) {
	t.Parallel()
	srv, n := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		io.WriteString(w, `{"callid":`) // and the server closes the connection, 90 bytes short
	})
	c := newClient(t, srv.URL, pbx.Config{})
	if id, err := c.MakeCall(t.Context(), "andy", "79101234567"); err != nil || id != "" {
		t.Fatalf("got %q, %v; want a placed call without id", id, err)
	}
	if n.Load() != 1 {
		t.Fatalf("%d requests, want 1", n.Load())
	}
	// A read-only command still fails on such an answer.
	if _, err := c.GetDND(t.Context(), "andy"); !errors.Is(err, pbx.ErrUnavailable) {
		t.Fatalf("get_dnd on a cut-off answer: %v", err)
	}
}

// TestMakeCallLogsAnAnswerWithoutIDShortAndWithoutTheToken: the log line
// for an unreadable answer carries a short excerpt, never the token, even
// when the PBX echoes the request back.
func TestMakeCallLogsAnAnswerWithoutIDShortAndWithoutTheToken(t *testing.T) {
	t.Parallel()
	const token = "tok-5f317b9f-e86c-41f7"
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<pre>"+token+" "+strings.Repeat("x", 5000)+"</pre>")
	})
	core, logs := observer.New(zap.DebugLevel)
	c, err := pbx.New(pbx.Config{URL: srv.URL, Token: token, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	if id, err := c.MakeCall(t.Context(), "andy", "79101234567"); err != nil || id != "" {
		t.Fatalf("got %q, %v", id, err)
	}
	entries := logs.FilterMessageSnippet("no call id").All()
	if len(entries) != 1 {
		t.Fatalf("want one log line for the answer without id, got %d", len(entries))
	}
	for k, v := range entries[0].ContextMap() {
		if s := fmt.Sprint(v); strings.Contains(s, token) || len(s) > 100 {
			t.Errorf("log field %s = %q: the token, or too long", k, s)
		}
	}
}

func TestMakeCallSendsTheDocumentedForm(t *testing.T) {
	t.Parallel()
	forms := make(chan http.Request, 1)
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		forms <- *r
		io.WriteString(w, `{"callid":"x"}`)
	})
	c := newClient(t, srv.URL+"/sys/crm_api.wcgp", pbx.Config{Token: "secret"})
	if _, err := c.MakeCall(t.Context(), "andy", "79101234567"); err != nil {
		t.Fatal(err)
	}
	r := <-forms
	if r.Method != http.MethodPost || r.URL.Path != "/sys/crm_api.wcgp" || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		t.Errorf("request %s %s %s", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
	}
	for k, want := range map[string]string{"cmd": "makeCall", "token": "secret", "user": "andy", "phone": "79101234567"} {
		if got := r.PostForm.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestReadAnswersAcceptLooseJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		body string
		dnd  bool
	}{{`{"state":true}`, true}, {`{"state":"false"}`, false}, {`{"state":1}`, true}, {`{state: true}`, false}} {
		srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, tc.body) })
		c := newClient(t, srv.URL, pbx.Config{})
		got, err := c.GetDND(t.Context(), "andy")
		if tc.body == `{state: true}` { // not JSON at all
			if !errors.Is(err, pbx.ErrBadResponse) {
				t.Errorf("body %q: err = %v", tc.body, err)
			}
			continue
		}
		if err != nil || got != tc.dnd {
			t.Errorf("body %q: got %v, %v", tc.body, got, err)
		}
	}
	srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"name":"andy","realName":"A","ext":708,"telnum":79261234567},{"name":"mike","ext":null}]`)
	})
	as, err := newClient(t, srv.URL, pbx.Config{}).Accounts(t.Context())
	if err != nil || len(as) != 2 || as[0].Ext != "708" || as[0].Telnum != "79261234567" || as[1].Ext != "" {
		t.Errorf("accounts: %+v, %v", as, err)
	}
}

func TestHistoryRefusesAnswersThatAreNoCSV(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]error{
		`{"error":"Internal"}`:          pbx.ErrBadResponse,
		"UID,type\n,in\n":               pbx.ErrBadResponse,
		"UID,start\nA-1,not a time\n":   pbx.ErrBadResponse,
		"[]":                            nil,
		"UID,type,client\r\nA,in,1\r\n": nil,
	} {
		srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
		_, err := newClient(t, srv.URL, pbx.Config{}).History(t.Context(), pbx.HistoryQuery{})
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Errorf("body %q: err = %v, want %v", body, err, want)
		}
	}
}
