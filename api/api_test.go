package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/api"
	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
	"github.com/callpop/callpop/pbx"
)

const jwtSecret = "api-test-secret-0123456789abcdef0123456789"

// server is the page API over real HTTP, behind real JWT auth.
type server struct {
	t   *testing.T
	url string
	jwt *auth.JWT
}

// newServer serves the API on calls, with the PBX at pbxURL ("" for none).
func newServer(t *testing.T, calls event.CallLog, pbxURL string) *server {
	t.Helper()
	j, err := auth.NewJWT(jwtSecret)
	if err != nil {
		t.Fatal(err)
	}
	cfg := pbx.Config{Logger: zaptest.NewLogger(t)}
	if pbxURL != "" {
		cfg.URL, cfg.Token = pbxURL, "pbx-token"
	}
	p, err := pbx.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a := api.New(api.Config{Rate: 1000, Burst: 1000}, p, calls, zaptest.NewLogger(t))
	srv := httptest.NewServer(mux(a.Routes(j.RequireUser)))
	t.Cleanup(srv.Close)
	return &server{t: t, url: srv.URL, jwt: j}
}

// do calls the API as user and decodes its JSON answer.
func (s *server) do(user, method, path, body string) (int, map[string]any) {
	s.t.Helper()
	tok, err := s.jwt.Mint(user, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	req, _ := http.NewRequest(method, s.url+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		s.t.Fatalf("%s %s: answer not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

func history(t *testing.T, b event.Broker, id, user string, st event.Status) {
	t.Helper()
	rec := event.Record{CallID: id, User: user, Phone: "79101234567", Direction: event.DirIn, Status: st, Start: time.Now()}
	if err := b.Update(context.Background(), id, func(r *event.CallState) []event.Out { return r.ApplyHistory(rec, time.Now()) }); err != nil {
		t.Fatal(err)
	}
}

func TestMarkSeenChangesOnlyTheUsersOwnMissedCalls(t *testing.T) {
	t.Parallel()
	t.Run("memory", func(t *testing.T) {
		t.Parallel()
		testMarkSeen(t, memory.New(memory.Config{}), nil)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		rdb := srv.Client()
		b := redis.New(rdb, redis.Config{}, zaptest.NewLogger(t))
		t.Cleanup(func() { b.Close() })
		testMarkSeen(t, b, func() int64 {
			n, err := rdb.DBSize(context.Background()).Result()
			if err != nil {
				t.Fatal(err)
			}
			return n
		})
	})
}

// testMarkSeen drives POST /api/calls/seen; keys, when not nil, counts what
// the broker's backend stores.
func testMarkSeen(t *testing.T, b event.Broker, keys func() int64) {
	frames := make(chan event.Message, 100)
	b.Register(func(m event.Message) { frames <- m })
	if err := b.Subscribe(context.Background(), "andy"); err != nil {
		t.Fatal(err)
	}
	history(t, b, "m1", "andy", event.Missed)
	history(t, b, "m2", "andy", event.Missed)
	history(t, b, "a1", "andy", event.Success)
	history(t, b, "x1", "mike", event.Missed)
	for range 3 { // the history frames
		<-frames
	}
	s := newServer(t, b, "")
	mark := func(user, body string) (int, any) {
		t.Helper()
		st, out := s.do(user, http.MethodPost, "/api/calls/seen", body)
		return st, out["marked"]
	}

	var before int64
	if keys != nil {
		before = keys()
	}
	var unknown []string
	for i := range 40 {
		unknown = append(unknown, fmt.Sprintf("%q", fmt.Sprintf("no-such-call-%d", i)))
	}
	if st, n := mark("andy", `{"callids":[`+strings.Join(unknown, ",")+`]}`); st != http.StatusOK || n != 0.0 {
		t.Fatalf("unknown ids: %d, marked %v; want 200, 0", st, n)
	}
	if st, n := mark("andy", `{"callids":["x1"]}`); st != http.StatusOK || n != 0.0 {
		t.Fatalf("mike's call: %d, marked %v; want 200, 0", st, n)
	}
	if keys != nil {
		if after := keys(); after != before {
			t.Fatalf("%d keys before, %d after marking calls that are not the user's", before, after)
		}
	}
	if st, n := mark("andy", `{"callids":["m1","m1","a1"]}`); st != http.StatusOK || n != 1.0 {
		t.Fatalf("m1 twice and an answered call: %d, marked %v; want 200, 1", st, n)
	}
	if _, n := mark("andy", `{"callids":["m1"]}`); n != 0.0 {
		t.Fatalf("m1 again: marked %v", n)
	}
	if _, n := mark("andy", `{"all":true}`); n != 1.0 {
		t.Fatalf("all: marked %v, want 1 (m2)", n)
	}
	if _, out := s.do("andy", http.MethodGet, "/api/calls", ""); out["unseen_missed"] != 0.0 {
		t.Fatalf("andy after marking: %v", out)
	}
	if _, out := s.do("mike", http.MethodGet, "/api/calls", ""); out["unseen_missed"] != 1.0 {
		t.Fatalf("mike's missed call changed: %v", out)
	}

	// One seen frame per change, in order; a sentinel frame shows none
	// came after them.
	ev := event.Event{Type: event.Incoming, CallID: "sentinel", User: "andy", Phone: "79101234567", At: time.Now()}
	if err := b.Update(context.Background(), ev.CallID, func(r *event.CallState) []event.Out { return r.ApplyEvent(ev) }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"type":"seen"` + `,"id":"%s","callid":"m1"`, `"type":"seen"` + `,"id":"%s","callid":"m2"`, `"event":"INCOMING","callid":"sentinel"`} {
		select {
		case m := <-frames:
			if w := strings.ReplaceAll(want, "%s", m.ID.String()); !strings.Contains(string(m.Data), w) {
				t.Fatalf("frame %s, want %s", m.Data, w)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no frame, want %s", want)
		}
	}

	for body, why := range map[string]string{
		`{}`:               "nothing named",
		`{"callids":[]}`:   "nothing named",
		`{"callids":[""]}`: "an empty id",
		`{"callids":["` + strings.Repeat("x", 257) + `"]}`:                     "an id longer than a callid",
		`{"callids":[` + strings.Repeat(`"m1",`, api.MaxCallsLimit) + `"m2"]}`: "more ids than recent calls",
		`{"callids":["m1"],"user":"mike"}`:                                     "another user",
	} {
		if st, _ := mark("andy", body); st != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", why, st)
		}
	}
}

// pbxAnswering is a PBX whose makeCall answers status and body, counting
// the calls.
func pbxAnswering(t *testing.T, status int, body string) (string, *atomic.Int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.FormValue("cmd") != "makeCall" || r.FormValue("token") != "pbx-token" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"Invalid parameters"}`)
			return
		}
		n.Add(1)
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// TestClickToCallIs200WheneverThePBXPlacedTheCall: any 2xx of makeCall rang
// the manager's phone, so the widget is told the call is on its way, with
// the id when the PBX gave one it could read; only a PBX that refused (502)
// or could not be reached (503) fails the click.
func TestClickToCallIs200WheneverThePBXPlacedTheCall(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		status int
		body   string
		want   int
		callid any // nil: no callid in the answer
	}{
		{200, `{"data":{"call_id":"c-1"}}`, 200, "c-1"},
		{200, `{"result":"ok","uuid":"c-2"}`, 200, "c-2"},
		{200, `"c-3"`, 200, "c-3"},
		{200, "c-4\r\n", 200, "c-4"},
		{200, "<html><body>Call queued</body></html>", 200, nil},
		{200, "", 200, nil},
		{204, "", 200, nil},
		{403, `{"error":"Forbidden"}`, 502, nil},
		{500, "oops", 503, nil},
	} {
		url, calls := pbxAnswering(t, tc.status, tc.body)
		s := newServer(t, memory.New(memory.Config{}), url)
		st, out := s.do("andy", http.MethodPost, "/api/call", `{"phone":"+7 910 123-45-67"}`)
		if st != tc.want || out["callid"] != tc.callid {
			t.Errorf("PBX %d %q: %d %v; want %d with callid %v", tc.status, tc.body, st, out, tc.want, tc.callid)
		}
		if calls.Load() != 1 {
			t.Errorf("PBX %d %q: makeCall sent %d times, want once", tc.status, tc.body, calls.Load())
		}
	}
}

// mux routes routes as the node's router does, with a ServeMux, whose
// patterns the routes' paths already are.
func mux(routes []api.Route) http.Handler {
	m := http.NewServeMux()
	for _, r := range routes {
		m.Handle(r.Method+" "+r.Path, r.Handler)
	}
	return m
}
