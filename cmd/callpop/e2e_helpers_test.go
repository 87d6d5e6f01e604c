package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
)

const (
	testCRMToken = "crm-token-for-tests"
	testSecret   = "0123456789abcdef0123456789abcdef-test"
)

// node is one running callpop server in a test.
type node struct {
	t    *testing.T
	base string // http://127.0.0.1:port
	srv  *server
	stop func() // drains the node and waits for it
}

func testConfig(t *testing.T, args ...string) *config {
	t.Helper()
	env := map[string]string{"CALLPOP_CRM_TOKEN": testCRMToken, "CALLPOP_JWT_SECRET": testSecret}
	cfg, err := parseConfig("serve", args, func(k string) string { return env[k] }, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// startNode runs a node on a free loopback port with broker b (nil: built
// from cfg), stopped at test end.
func startNode(t *testing.T, cfg *config, b event.Broker) *node {
	t.Helper()
	s, err := newServer(cfg, zaptest.NewLogger(t), serverOptions{broker: b})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveNode(t, s, ln)
}

// serveNode serves s on ln until the test ends (or n.stop).
func serveNode(t *testing.T, s *server, ln net.Listener) *node {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx, ln) }()
	var once atomic.Bool
	n := &node{t: t, base: "http://" + ln.Addr().String(), srv: s}
	n.stop = func() {
		if once.Swap(true) {
			return
		}
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("node stopped with %v", err)
		}
	}
	t.Cleanup(n.stop)
	return n
}

// cluster returns two nodes sharing one backend of the given kind.
func cluster(t *testing.T, kind string) (a, b *node) {
	t.Helper()
	switch kind {
	case "memory":
		ma := memory.New(memory.Config{})
		return startNode(t, testConfig(t), ma), startNode(t, testConfig(t), ma.Node())
	case "redis":
		rs := redistest.Start(t)
		return startNode(t, testConfig(t, "--redis-url", rs.URL()), nil),
			startNode(t, testConfig(t, "--redis-url", rs.URL()), nil)
	case "redis-sentinel":
		u := redistest.StartSentinel(t).URL()
		return startNode(t, testConfig(t, "--redis-url", u), nil), startNode(t, testConfig(t, "--redis-url", u), nil)
	case "redis-cluster":
		u := redistest.StartCluster(t).URL()
		return startNode(t, testConfig(t, "--redis-url", u), nil), startNode(t, testConfig(t, "--redis-url", u), nil)
	}
	t.Fatalf("unknown broker %q", kind)
	return nil, nil
}

var brokers = []string{"memory", "redis"}

// withHA adds Sentinel and Redis Cluster to brokers, for the scenarios that
// prove a cluster of nodes works on them (each starts five or six servers).
var withHA = append(brokers[:len(brokers):len(brokers)], "redis-sentinel", "redis-cluster")

// post sends a webhook form and returns the status and decoded JSON answer.
func (n *node) post(fields ...string) (int, map[string]any) {
	n.t.Helper()
	form := url.Values{"crm_token": {testCRMToken}}
	for i := 0; i+1 < len(fields); i += 2 {
		form.Set(fields[i], fields[i+1])
	}
	resp, err := http.Post(n.base+"/webhook", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		n.t.Fatalf("answer is not JSON: %v", err)
	}
	return resp.StatusCode, body
}

// event posts a cmd=event webhook and requires 200.
func (n *node) event(typ, user, callid string, extra ...string) {
	n.t.Helper()
	fields := append([]string{"cmd", "event", "type", typ, "user", user, "callid", callid, "phone", "79101234567"}, extra...)
	if st, body := n.post(fields...); st != http.StatusOK {
		n.t.Fatalf("event %s %s: %d %v", typ, user, st, body)
	}
}

func (n *node) token(user string) string {
	tok, err := n.srv.jwt.Mint(user, time.Hour)
	if err != nil {
		n.t.Fatal(err)
	}
	return tok
}

// ticket trades user's token for a socket ticket at POST /api/ws-ticket, as
// the widget does before each connect.
func (n *node) ticket(user string) string {
	n.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, n.base+"/api/ws-ticket", nil)
	req.Header.Set("Authorization", "Bearer "+n.token(user))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Ticket    string `json:"ticket"`
		ExpiresIn int    `json:"expires_in"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || body.Ticket == "" {
		n.t.Fatalf("POST /api/ws-ticket for %s: %d %+v %v", user, resp.StatusCode, body, err)
	}
	return body.Ticket
}

// client is a WebSocket session as a widget would hold it.
type client struct {
	t      *testing.T
	conn   *websocket.Conn
	frames chan map[string]any
	closed chan error
}

// dial opens a session for user, with since when not empty.
func (n *node) dial(user, since string) *client {
	n.t.Helper()
	u := strings.Replace(n.base, "http", "ws", 1) + "/ws?ticket=" + n.ticket(user)
	if since != "" {
		u += "&since=" + since
	}
	return n.dialURL(user, u)
}

// dialURL opens a session for user at the socket URL u.
func (n *node) dialURL(user, u string) *client {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		n.t.Fatalf("dial %s: %v", user, err)
	}
	c := &client{t: n.t, conn: conn, frames: make(chan map[string]any, 1024), closed: make(chan error, 1)}
	go func() {
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				c.closed <- err
				close(c.frames)
				return
			}
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				c.closed <- fmt.Errorf("frame is not JSON: %s", data)
				close(c.frames)
				return
			}
			c.frames <- f
		}
	}()
	n.t.Cleanup(func() { conn.CloseNow() })
	return c
}

// next returns the next frame, failing after a few seconds.
func (c *client) next() map[string]any {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatalf("session closed: %v", <-c.closed)
		}
		return f
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame within 5s")
	}
	return nil
}

// hello reads the first frame and requires it to be hello.
func (c *client) hello() map[string]any {
	c.t.Helper()
	f := c.next()
	if f["type"] != "hello" {
		c.t.Fatalf("first frame %v, want hello", f)
	}
	return f
}

// expectCall reads the next frame and requires a call frame with event and callid.
func (c *client) expectCall(ev, callid string) map[string]any {
	c.t.Helper()
	f := c.next()
	if f["type"] != "call" || f["event"] != ev || f["callid"] != callid {
		c.t.Fatalf("got %v, want call %s %s", f, ev, callid)
	}
	if id, _ := f["id"].(string); id == "" {
		c.t.Fatalf("call frame without id: %v", f)
	}
	return f
}

// closeCode waits for the session to end and returns its close status.
func (c *client) closeCode() websocket.StatusCode {
	c.t.Helper()
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return websocket.CloseStatus(<-c.closed)
			}
		case <-time.After(10 * time.Second):
			c.t.Fatal("session not closed within 10s")
		}
	}
}

func activeCallIDs(hello map[string]any) []string {
	var ids []string
	list, _ := hello["active"].([]any)
	for _, a := range list {
		m, _ := a.(map[string]any)
		ids = append(ids, fmt.Sprint(m["callid"]))
	}
	return ids
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }

// redisForTest starts a redis-server for the test and returns its URL.
func redisForTest(t *testing.T) string { return redistest.Start(t).URL() }
