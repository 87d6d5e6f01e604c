//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

const testAPIKey = "bench-test-centrifugo-api-key"

func TestCentrifugoEncoding(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{string(centrifugoConnect("a.b.c")), `{"id":1,"connect":{"token":"a.b.c","name":"callpop-bench"}}`},
		{string(centrifugoSubscribe("u7")), `{"id":2,"subscribe":{"channel":"user:#u7"}}`},
		{string(centrifugoPublishBody("u7", 41, "cx-41-99")),
			`{"channel":"user:#u7","data":{"type":"call","id":"42-0","event":"INCOMING","callid":"cx-41-99","phone":"79100000041","user":"u7","direction":"in"}}`},
	} {
		if c.got != c.want {
			t.Errorf("got  %s\nwant %s", c.got, c.want)
		}
	}
}

func TestCentrifugoOptions(t *testing.T) {
	base := []string{"--server", "centrifugo", "--target", "http://127.0.0.1:9", "--jwt-secret", "s"}
	t.Setenv("CALLPOP_BENCH_CENTRIFUGO_API_KEY", "")
	for _, extra := range [][]string{
		{},                                    // no API key
		{"--api-key", "k", "--mode", "group"}, // callpop's own semantics
		{"--api-key", "k", "--mode", "storm"},
		{"--api-key", "k", "--ack"},
	} {
		if _, err := parseOptions(append(slices.Clone(base), extra...), io.Discard); err == nil {
			t.Errorf("%v accepted", extra)
		}
	}
	// The key may come from the environment; no crm token is needed.
	t.Setenv("CALLPOP_BENCH_CENTRIFUGO_API_KEY", "from-env")
	o, err := parseOptions(base, io.Discard)
	if err != nil || o.apiKey != "from-env" {
		t.Fatalf("options %+v, %v", o, err)
	}
	if _, err := parseOptions([]string{"--server", "other", "--crm-token", "x", "--jwt-secret", "y"}, io.Discard); err == nil {
		t.Error("--server other accepted")
	}
}

// fakeCentrifugo speaks the part of Centrifugo's JSON protocol and HTTP API
// the tool uses, and checks every command and request field by field: a
// session that does not connect with a valid token for its user, subscribe
// to that user's personal channel, and answer pings, or a publish without
// the key or with other fields, is refused, which fails the run.
type fakeCentrifugo struct {
	t      *testing.T
	dupPub bool // deliver every publication twice, in one message

	mu       sync.Mutex
	subs     map[string][]*websocket.Conn // channel → sessions
	pongs    int
	problems []string
	wg       sync.WaitGroup
}

func (f *fakeCentrifugo) problem(format string, a ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.problems = append(f.problems, fmt.Sprintf(format, a...))
}

// exactJSON decodes b into a map and checks it has exactly keys.
func exactJSON(b []byte, keys ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %q", b)
	}
	if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, slices.Sorted(slices.Values(keys))) {
		return nil, fmt.Errorf("keys %v, want %v in %s", got, keys, b)
	}
	return m, nil
}

func (f *fakeCentrifugo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case centrifugoWSPath:
		f.wg.Add(1)
		defer f.wg.Done()
		f.session(w, r)
	case centrifugoPublishPath:
		f.publish(w, r)
	default:
		f.problem("request to %s", r.URL.Path)
		http.NotFound(w, r)
	}
}

func (f *fakeCentrifugo) session(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		f.problem("a token in the upgrade request")
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		f.problem("accept: %v", err)
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	read := func() []byte {
		_, b, err := c.Read(ctx)
		if err != nil {
			return nil
		}
		return b
	}
	// connect: {"id":1,"connect":{"token":…,"name":…}}, the token an HS256
	// JWT of the test secret whose sub is the user.
	m, err := exactJSON(read(), "id", "connect")
	if err != nil || string(m["id"]) != "1" {
		f.problem("connect command: %v", err)
		return
	}
	cm, err := exactJSON(m["connect"], "token", "name")
	if err != nil {
		f.problem("connect body: %v", err)
		return
	}
	var tok string
	_ = json.Unmarshal(cm["token"], &tok)
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return []byte(testJWTSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired()); err != nil {
		f.problem("connection token: %v", err)
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"error":{"code":109,"message":"token expired"}}`))
		return
	}
	user, _ := claims["sub"].(string)
	// The reply and a ping in one message, as Centrifugo batches them.
	if c.Write(ctx, websocket.MessageText, []byte(`{"id":1,"connect":{"client":"c1","version":"fake","ping":25,"pong":true}}`+"\n{}")) != nil {
		return
	}
	// The subscribe and the pong, in either order.
	var subscribed, ponged bool
	for !subscribed || !ponged {
		b := read()
		if b == nil {
			f.problem("%s: closed before subscribing and answering the ping", user)
			return
		}
		if string(b) == "{}" {
			ponged = true
			continue
		}
		m, err := exactJSON(b, "id", "subscribe")
		if err != nil || string(m["id"]) != "2" {
			f.problem("subscribe command: %v", err)
			return
		}
		sm, err := exactJSON(m["subscribe"], "channel")
		if err != nil || string(sm["channel"]) != `"user:#`+user+`"` {
			f.problem("subscribe of %s: %s %v", user, m["subscribe"], err)
			return
		}
		f.mu.Lock()
		f.subs["user:#"+user] = append(f.subs["user:#"+user], c)
		f.mu.Unlock()
		subscribed = true
		if c.Write(ctx, websocket.MessageText, []byte(`{"id":2,"subscribe":{}}`)) != nil {
			return
		}
	}
	f.mu.Lock()
	f.pongs++
	f.mu.Unlock()
	for read() != nil { // until the tool closes the socket
	}
}

func (f *fakeCentrifugo) publish(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case r.Method != http.MethodPost:
		f.problem("publish with %s", r.Method)
	case r.Header.Get("X-API-Key") != testAPIKey:
		f.problem("publish with API key %q", r.Header.Get("X-API-Key"))
	case r.Header.Get("Content-Type") != "application/json":
		f.problem("publish with Content-Type %q", r.Header.Get("Content-Type"))
	default:
		m, err := exactJSON(body, "channel", "data")
		if err != nil {
			f.problem("publish body: %v", err)
			break
		}
		if _, err := exactJSON(m["data"], "type", "id", "event", "callid", "phone", "user", "direction"); err != nil {
			f.problem("publish data: %v", err)
			break
		}
		var ch string
		_ = json.Unmarshal(m["channel"], &ch)
		push := []byte(`{"push":{"channel":` + string(m["channel"]) + `,"pub":{"data":` + string(m["data"]) + `}}}`)
		if f.dupPub {
			push = bytes.Join([][]byte{push, push}, []byte("\n"))
		}
		f.mu.Lock()
		conns := slices.Clone(f.subs[ch])
		f.mu.Unlock()
		for _, c := range conns {
			_ = c.Write(r.Context(), websocket.MessageText, push)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"result":{}}`)
		return
	}
	http.Error(w, "bad request", http.StatusBadRequest)
}

// runFake runs the tool in centrifugo mode against f and returns its report
// and error.
func runFake(t *testing.T, f *fakeCentrifugo, apiKey string) (report, error) {
	t.Helper()
	f.t, f.subs = t, map[string][]*websocket.Conn{}
	srv := httptest.NewServer(f)
	defer func() { srv.Close(); f.wg.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	// One worker: publications reach the fake in the order their ids say
	// (concurrent POSTs may overtake each other on a busy host, which the
	// report would count as out of order).
	err := run(ctx, []string{"--server", "centrifugo", "--target", srv.URL, "--api-key", apiKey,
		"--jwt-secret", testJWTSecret, "--json", "--settle", "10ms", "--drain", "3s", "--source-ips", "4", "--workers", "1",
		"--sessions", "20", "--users", "4", "--rate", "50", "--duration", "1s"}, &out)
	var rep report
	if jerr := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &rep); jerr != nil {
		t.Fatalf("run: %v; output %q: %v", err, out.String(), jerr)
	}
	return rep, err
}

func TestCentrifugoModeAgainstFake(t *testing.T) {
	f := &fakeCentrifugo{}
	rep, err := runFake(t, f, testAPIKey)
	if err != nil {
		t.Errorf("run: %v", err)
	}
	if len(f.problems) > 0 {
		t.Errorf("the fake Centrifugo saw:\n%s", strings.Join(f.problems, "\n"))
	}
	if rep.Server != serverCentrifugo || rep.Connected != 20 || rep.NoHello != 0 || f.pongs != 20 {
		t.Errorf("server %q, %d of 20 sessions subscribed (no hello %d), %d answered the ping", rep.Server, rep.Connected, rep.NoHello, f.pongs)
	}
	// 50 publications, each to the 5 sessions of its user.
	if rep.Webhooks < 45 || rep.Expected != rep.Webhooks*5 || rep.Delivered != rep.Expected {
		t.Errorf("%d published, %d of %d frames delivered", rep.Webhooks, rep.Delivered, rep.Expected)
	}
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.Misrouted != 0 || rep.OutOfOrder != 0 || len(rep.HTTPErrors) != 0 {
		t.Errorf("lost %d, duplicated %d, misrouted %d, out of order %d, HTTP errors %v",
			rep.Lost, rep.Duplicated, rep.Misrouted, rep.OutOfOrder, rep.HTTPErrors)
	}
	if rep.Latency.N != uint64(rep.Delivered) || rep.Latency.P50 <= 0 {
		t.Errorf("latency %+v for %d frames", rep.Latency, rep.Delivered)
	}
}

func TestCentrifugoModeCountsDuplicatesAndRefusals(t *testing.T) {
	// Every publication twice in one message: the second copy of each is a
	// duplicate, and the run fails.
	rep, err := runFake(t, &fakeCentrifugo{dupPub: true}, testAPIKey)
	if err == nil || rep.Duplicated != rep.Delivered || rep.Delivered == 0 || rep.Lost != 0 {
		t.Errorf("doubled publications: err %v, delivered %d, duplicated %d, lost %d", err, rep.Delivered, rep.Duplicated, rep.Lost)
	}
	// A wrong API key: every publish refused, nothing expected.
	f := &fakeCentrifugo{}
	rep, _ = runFake(t, f, "wrong-key")
	if rep.HTTPErrors["400"] != rep.Webhooks || rep.Webhooks == 0 || rep.Expected != 0 || len(f.problems) != int(rep.Webhooks) {
		t.Errorf("wrong key: %d published, HTTP errors %v, %d frames expected, %d problems", rep.Webhooks, rep.HTTPErrors, rep.Expected, len(f.problems))
	}
}
