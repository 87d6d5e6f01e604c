package pbx_test

import (
	"errors"
	"io"
	"net/http"
	"testing"

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

func TestMakeCallRefusesAnswersWithoutCallID(t *testing.T) {
	t.Parallel()
	for _, body := range []string{"", "{}", `{"callid":""}`, `{"callid":`, "OK then", `null`, `true`, "<html>\n<body>"} {
		srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) })
		c := newClient(t, srv.URL, pbx.Config{})
		if id, err := c.MakeCall(t.Context(), "andy", "79101234567"); !errors.Is(err, pbx.ErrBadResponse) {
			t.Errorf("body %q: got %q, %v; want ErrBadResponse", body, id, err)
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
