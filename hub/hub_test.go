package hub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/hub"
)

const secret = "0123456789abcdef0123456789abcdef-hub"

type testHub struct {
	*hub.Hub
	reg *prometheus.Registry
	b   *memory.Broker
	jwt *auth.JWT
	url string
}

func newTestHub(tb testing.TB, cfg hub.Config) *testHub {
	tb.Helper()
	b := memory.New(memory.Config{})
	reg := prometheus.NewRegistry()
	h := hub.New(cfg, b, zaptest.NewLogger(tb), reg)
	j, err := auth.NewJWT(secret)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(j.RequireUser(h))
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		srv.Close()
	})
	return &testHub{Hub: h, reg: reg, b: b, jwt: j, url: strings.Replace(srv.URL, "http", "ws", 1)}
}

func (h *testHub) dial(tb testing.TB, user string, ttl time.Duration, opts *websocket.DialOptions) *websocket.Conn {
	tb.Helper()
	tok, err := h.jwt.Mint(user, ttl)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The token in a header: the hub's tests are about sockets, not about
	// how the widget authenticates (tickets; see auth.RequireSocketUser).
	if opts == nil {
		opts = &websocket.DialOptions{}
	} else {
		o := *opts
		opts = &o
	}
	opts.HTTPHeader = opts.HTTPHeader.Clone()
	if opts.HTTPHeader == nil {
		opts.HTTPHeader = http.Header{}
	}
	opts.HTTPHeader.Set("Authorization", "Bearer "+tok)
	c, _, err := websocket.Dial(ctx, h.url, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.CloseNow() })
	return c
}

func read(tb testing.TB, c *websocket.Conn) map[string]any {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		tb.Fatalf("read: %v", err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		tb.Fatal(err)
	}
	return f
}

// closeStatus reads until the server closes c and returns the code.
func closeStatus(tb testing.TB, c *websocket.Conn) websocket.StatusCode {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return websocket.CloseStatus(err)
		}
	}
}

func (h *testHub) incoming(tb testing.TB, user, callID, pad string) {
	tb.Helper()
	ev := event.Event{Type: event.Incoming, CallID: callID, User: user, Phone: "79101234567", GroupRealName: pad, At: time.Now()}
	if err := h.b.Update(context.Background(), callID, func(r *event.CallState) []event.Out { return r.ApplyEvent(ev) }); err != nil {
		tb.Fatal(err)
	}
}

func waitSessions(tb testing.TB, h *testHub, n int) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.Sessions() != n {
		if time.Now().After(deadline) {
			tb.Fatalf("%d sessions, want %d", h.Sessions(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// smallReceiveBuffer dials with a tiny socket receive buffer, so a client
// that stops reading backs up into the server quickly.
func smallReceiveBuffer() *websocket.DialOptions {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	return &websocket.DialOptions{HTTPClient: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}

func TestSlowClientIsCutOffWhileOthersKeepReceiving(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{QueueSize: 8})
	slow := h.dial(t, "andy", time.Hour, smallReceiveBuffer())
	fast := h.dial(t, "andy", time.Hour, nil)
	read(t, slow)
	read(t, fast)

	// Publish in step with the fast session, which reads every frame; the
	// slow one never reads, so its socket and then its queue fill up.
	pad := strings.Repeat("x", 4096)
	sent := 0
	for ; sent < 20000 && h.Sessions() == 2; sent++ {
		id := fmt.Sprintf("c%d", sent)
		h.incoming(t, "andy", id, pad)
		if f := read(t, fast); f["callid"] != id {
			t.Fatalf("fast session got %v, want %s", f["callid"], id)
		}
	}
	waitSessions(t, h, 1)
	// The close frame itself may not fit into the full socket: the client
	// sees 4000 or an abnormal end, and reconnects either way.
	if code := closeStatus(t, slow); code != event.CloseSlow && code != -1 {
		t.Fatalf("slow session closed with %d, want %d", code, event.CloseSlow)
	}
	if n := counter(t, h, "callpop_sessions_dropped_total", "slow"); n != 1 {
		t.Fatalf("dropped{reason=slow} = %v, want 1", n)
	}
	h.incoming(t, "andy", "after", pad)
	if f := read(t, fast); f["callid"] != "after" {
		t.Fatalf("fast session after the cut: %v", f["callid"])
	}
	t.Logf("slow session cut after %d frames", sent)
}

func TestSessionsOverTheUserCapAreRefused(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{MaxSessionsPerUser: 2})
	for range 2 {
		read(t, h.dial(t, "andy", time.Hour, nil))
	}
	if code := closeStatus(t, h.dial(t, "andy", time.Hour, nil)); code != event.CloseTooMany {
		t.Fatalf("third session closed with %d, want %d", code, event.CloseTooMany)
	}
	read(t, h.dial(t, "mike", time.Hour, nil)) // other users are not affected
}

// TestMain fails the package when any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestShutdownClosesSessionsWithRestartCode(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	code := make(chan websocket.StatusCode, 1)
	go func() { code <- closeStatus(t, c) }() // a widget reads, so it answers the close
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-code; got != event.CloseRestart {
		t.Fatalf("closed with %d, want %d", got, event.CloseRestart)
	}
}

// counter reads a counter from reg: the one with the label value label, or
// with no labels when label is empty.
// counter reads the hub's counter name (label's series of a labelled one).
func counter(tb testing.TB, h *testHub, name, label string) float64 {
	tb.Helper()
	return testutil.ToFloat64(hub.Metric(h.Hub, name, label))
}

func TestOversizedClientFrameClosesTheSession(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"ack","id":"`+strings.Repeat("1", 4096)+`"}`))
	if code := closeStatus(t, c); code != websocket.StatusMessageTooBig {
		t.Fatalf("closed with %d, want %d (message too big)", code, websocket.StatusMessageTooBig)
	}
	waitSessions(t, h, 0)
}

// maskedFrame encodes a small final masked client frame: the first header
// byte (FIN and the opcode), then the payload.
func maskedFrame(b0 byte, p []byte) []byte {
	mask := [4]byte{1, 2, 3, 4}
	b := append([]byte{b0, 0x80 | byte(len(p))}, mask[:]...)
	for i, c := range p {
		b = append(b, c^mask[i%4])
	}
	return b
}

// dialRaw dials like dial and also hands back the client's socket, so a
// test can write frames the client library would not send (unasked pongs),
// and many in one write. Between the library's own writes the stream is the
// test's.
func (h *testHub) dialRaw(tb testing.TB, user string) (*websocket.Conn, net.Conn) {
	tb.Helper()
	conns := make(chan net.Conn, 1)
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			conns <- c
		}
		return c, err
	}}
	c := h.dial(tb, user, time.Hour, &websocket.DialOptions{HTTPClient: &http.Client{Transport: tr}})
	return c, <-conns
}

// A session that sends frames faster than its limit, whatever they are, is
// closed with 1008 once past the burst; the user's other sessions go on.
func TestFloodingSessionIsClosedWithPolicyViolation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"acks", maskedFrame(0x81, []byte(`{"type":"ack","id":"1-0"}`))},
		{"pongs", maskedFrame(0x8A, nil)}, // counted by the transport (session.Frame), never delivered
		{"pings", maskedFrame(0x89, []byte("p"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHub(t, hub.Config{})
			other := h.dial(t, "andy", time.Hour, nil)
			read(t, other)
			flood, raw := h.dialRaw(t, "andy")
			read(t, flood)
			// Ten bursts' worth in one write: far past the limit however slowly
			// a loaded machine reads them.
			if _, err := raw.Write(bytes.Repeat(tc.frame, 10*hub.DefaultInboundBurst)); err != nil {
				t.Fatal(err)
			}
			if code := closeStatus(t, flood); code != event.ClosePolicy {
				t.Fatalf("flooding session closed with %d, want %d", code, event.ClosePolicy)
			}
			waitSessions(t, h, 1)
			if n := counter(t, h, "callpop_sessions_dropped_total", "flood"); n != 1 {
				t.Fatalf("dropped{reason=flood} = %v, want 1", n)
			}
			h.incoming(t, "andy", "after", "")
			if f := read(t, other); f["callid"] != "after" {
				t.Fatalf("the other session got %v", f)
			}
		})
	}
}

// shown reads how many "shown" delays were observed: one per ack taken.
// shown counts the "shown" delays observed (prometheus/testutil reads a
// counter's value but not a histogram's sample count).
func shown(tb testing.TB, reg *prometheus.Registry) uint64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "callpop_frame_delay_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" && l.GetValue() == "shown" {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

// ack sends acks for ids and waits until the hub has read them all, taken or
// ignored, so the metrics reflect them.
func (h *testHub) ack(tb testing.TB, c *websocket.Conn, ids ...string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	read := func() float64 {
		return counter(tb, h, "callpop_frames_acked_total", "") + counter(tb, h, "callpop_acks_ignored_total", "")
	}
	want := read() + float64(len(ids))
	for _, id := range ids {
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ack","id":"`+id+`"}`)); err != nil {
			tb.Fatal(err)
		}
	}
	for read() != want {
		if ctx.Err() != nil {
			tb.Fatalf("%v acks read, want %v", read(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An ack for an id never written to the session (a forgery: "1-0" once
// added 56 years to the "shown" delay; an id of the user's log not sent yet;
// something that is no id) changes no metric but the ignored count, and
// leaves the session open.
func TestAckOfAFrameNeverSentIsIgnored(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	h.incoming(t, "andy", "c1", "")
	id := read(t, c)["id"].(string)
	next, _ := event.ParseID(id)
	next.Seq++

	h.ack(t, c, "1-0", next.String(), "x")
	if n := shown(t, h.reg); n != 0 {
		t.Fatalf("%d shown delays observed for ids never sent, want 0", n)
	}
	if n := counter(t, h, "callpop_acks_ignored_total", ""); n != 3 {
		t.Fatalf("acks ignored = %v, want 3", n)
	}
	h.ack(t, c, id) // and the session still takes a real one
	if n := shown(t, h.reg); n != 1 {
		t.Fatalf("%d shown delays observed, want 1", n)
	}
}

// An ack counts once: a repeat is ignored.
func TestRepeatedAckIsObservedOnce(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	h.incoming(t, "andy", "c1", "")
	id := read(t, c)["id"].(string)

	h.ack(t, c, id)
	if n := shown(t, h.reg); n != 1 {
		t.Fatalf("%d shown delays observed, want 1", n)
	}
	h.ack(t, c, id)
	if n := shown(t, h.reg); n != 1 {
		t.Fatalf("%d shown delays observed after a repeated ack, want 1", n)
	}
	if a, i := counter(t, h, "callpop_frames_acked_total", ""), counter(t, h, "callpop_acks_ignored_total", ""); a != 1 || i != 1 {
		t.Fatalf("acked %v, ignored %v; want 1 and 1", a, i)
	}
}

// TestUnstyledAcksAreCounted: a widget whose styles the page's CSP blocked
// says so in its acks, and the node counts those cards apart.
func TestUnstyledAcksAreCounted(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	h.incoming(t, "andy", "u1", "")
	id := read(t, c)["id"].(string)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ack","id":"`+id+`","unstyled":true}`)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, h, "callpop_frames_acked_total", "") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the unstyled ack was not taken")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := counter(t, h, "callpop_frames_acked_unstyled_total", ""); n != 1 {
		t.Fatalf("callpop_frames_acked_unstyled_total = %v, want 1", n)
	}
}

// Only the last frames written may be acked: an ack that comes after
// hub.SentSlots newer frames is ignored, the newest frame's is taken.
func TestAckOfAnOldFrameIsIgnored(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	var ids []string
	for i := range hub.SentSlots + 1 {
		h.incoming(t, "andy", fmt.Sprintf("c%d", i), "")
		ids = append(ids, read(t, c)["id"].(string))
	}
	h.ack(t, c, ids[0])
	if n := shown(t, h.reg); n != 0 {
		t.Fatalf("%d shown delays observed for a frame %d frames old, want 0", n, hub.SentSlots)
	}
	h.ack(t, c, ids[len(ids)-1])
	if n := shown(t, h.reg); n != 1 {
		t.Fatalf("%d shown delays observed, want 1", n)
	}
}

// The limit lets a whole burst through and closes on the frame after it. At
// one frame per thousand seconds no budget comes back during the test, and
// no ping (so no pong) comes within the hour.
func TestInboundLimitAllowsItsBurstExactly(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{InboundRate: 0.001, InboundBurst: 10, PingInterval: time.Hour})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	h.incoming(t, "andy", "c1", "")
	id := read(t, c)["id"].(string)
	acks := []string{id}
	for range 9 {
		acks = append(acks, "1-0")
	}
	h.ack(t, c, acks...)
	h.incoming(t, "andy", "c2", "")
	if f := read(t, c); f["callid"] != "c2" {
		t.Fatalf("after a full burst the session got %v", f)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ack","id":"1-0"}`)); err != nil { // the 11th
		t.Fatal(err)
	}
	if code := closeStatus(t, c); code != event.ClosePolicy {
		t.Fatalf("closed with %d, want %d", code, event.ClosePolicy)
	}
}

// Over TLS the socket cannot be polled (its records hide readiness): the
// session keeps a reader goroutine and is served the same way, frames out,
// acks and pings in, and the close handshake at shutdown.
func TestSessionOverTLSIsServed(t *testing.T) {
	t.Parallel()
	b := memory.New(memory.Config{})
	reg := prometheus.NewRegistry()
	h := hub.New(hub.Config{}, b, zaptest.NewLogger(t), reg)
	j, err := auth.NewJWT(secret)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(j.RequireUser(h))
	defer srv.Close()
	th := &testHub{Hub: h, reg: reg, b: b, jwt: j, url: strings.Replace(srv.URL, "https", "wss", 1)}
	c := th.dial(t, "andy", time.Hour, &websocket.DialOptions{HTTPClient: srv.Client()})
	if f := read(t, c); f["type"] != "hello" {
		t.Fatalf("first frame %v, want hello", f)
	}
	th.incoming(t, "andy", "c1", "")
	id := read(t, c)["id"].(string)
	th.ack(t, c, id)
	if n := shown(t, reg); n != 1 {
		t.Fatalf("%d shown delays observed, want 1", n)
	}
	code := make(chan websocket.StatusCode, 1)
	go func() { code <- closeStatus(t, c) }()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-code; got != event.CloseRestart {
		t.Fatalf("closed with %d, want %d", got, event.CloseRestart)
	}
}

// A client frame that breaks RFC 6455, or a message that is no ack, closes
// the session with its code (docs/contract.md); the user's other sessions go
// on.
func TestClientFrameThatBreaksTheProtocolClosesTheSession(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		frame []byte
		code  int
	}{
		{"InvalidUTF8", maskedFrame(0x81, []byte("{\"type\":\"ack\",\"id\":\"\xff\"}")), 1007},
		{"Unmasked", []byte{0x81, 0x02, '{', '}'}, 1002},
		{"ReservedBits", maskedFrame(0xC1, []byte(`{}`)), 1002},
		{"Binary", maskedFrame(0x82, []byte(`{"type":"ack","id":"1-1"}`)), event.CloseProtocol},
		{"NotAnAck", maskedFrame(0x81, []byte(`hello`)), event.CloseProtocol},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHub(t, hub.Config{})
			other := h.dial(t, "andy", time.Hour, nil)
			read(t, other)
			c, raw := h.dialRaw(t, "andy")
			read(t, c)
			if _, err := raw.Write(tc.frame); err != nil {
				t.Fatal(err)
			}
			if code := closeStatus(t, c); int(code) != tc.code {
				t.Fatalf("closed with %d, want %d", code, tc.code)
			}
			waitSessions(t, h, 1)
			h.incoming(t, "andy", "after", "")
			if f := read(t, other); f["callid"] != "after" {
				t.Fatalf("the other session got %v", f)
			}
		})
	}
}
