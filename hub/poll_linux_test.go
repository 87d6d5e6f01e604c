package hub_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callpop/callpop/hub"
)

// On Linux an idle session is watched by the hub's poller: no goroutine of
// its own. Parked readers were most of an idle session's memory.
func TestIdleSessionsHoldNoGoroutine(t *testing.T) {
	h := newTestHub(t, hub.Config{})
	warm := h.dial(t, "andy", time.Hour, nil) // the server's and the client's one-off goroutines
	read(t, warm)
	time.Sleep(100 * time.Millisecond)
	before := runtime.NumGoroutine()
	const n = 50
	conns := make([]*websocket.Conn, n)
	for i := range n {
		conns[i] = h.dial(t, fmt.Sprintf("user%d", i), time.Hour, nil)
		read(t, conns[i])
	}
	waitSessions(t, h, n+1)
	// The handlers return and the first passes end; a goroutine per session
	// would stay.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		grown := runtime.NumGoroutine() - before
		if grown < n/5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d idle sessions added %d goroutines", n, grown)
		}
	}
	// and they are served: each gets its frame, and its ack is read
	for i := range n {
		h.incoming(t, fmt.Sprintf("user%d", i), fmt.Sprintf("call-%d", i), "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i, c := range conns {
		f := read(t, c)
		if f["callid"] != fmt.Sprintf("call-%d", i) {
			t.Fatalf("session %d got %v", i, f)
		}
		if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ack","id":"`+f["id"].(string)+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, h, "callpop_frames_acked_total", "") != n {
		if time.Now().After(deadline) {
			t.Fatalf("%v acks read, want %d", counter(t, h, "callpop_frames_acked_total", ""), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A client may send its first frame in the same packet as its upgrade
// request; the bytes net/http read ahead must reach the session.
func TestFrameRightBehindTheUpgradeRequestIsRead(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	tok, err := h.jwt.Mint("andy", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimPrefix(h.url, "ws://")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nAuthorization: Bearer " + tok + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n\r\n"
	ack := maskedText([]byte(`{"type":"ack","id":"1-1"}`))
	if _, err := conn.Write(append([]byte(req), ack...)); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade answered %s", resp.Status)
	}
	// The id was never sent to this session, so the ack is read and ignored.
	deadline := time.Now().Add(5 * time.Second)
	for counter(t, h, "callpop_acks_ignored_total", "") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the ack sent with the upgrade request was never read")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// maskedText encodes a small masked client text frame.
func maskedText(p []byte) []byte { return maskedFrame(0x81, p) }

// A client's ping gets its pong, and the session goes on delivering.
func TestClientPingIsAnswered(t *testing.T) {
	t.Parallel()
	h := newTestHub(t, hub.Config{})
	c := h.dial(t, "andy", time.Hour, nil)
	read(t, c)
	frames := make(chan string, 4)
	go func() { // the client's reader: it takes the pong, and the frames
		for {
			_, data, err := c.Read(context.Background())
			if err != nil {
				close(frames)
				return
			}
			frames <- string(data)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	h.incoming(t, "andy", "after-ping", "")
	select {
	case f := <-frames:
		if !strings.Contains(f, "after-ping") {
			t.Fatalf("frame %s", f)
		}
	case <-ctx.Done():
		t.Fatal("no frame after the ping")
	}
	c.Close(websocket.StatusNormalClosure, "")
}
