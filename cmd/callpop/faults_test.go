package main

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/callpop/callpop/internal/redistest"
)

func (n *node) status(path string) int {
	n.t.Helper()
	resp, err := http.Get(n.base + path)
	if err != nil {
		n.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRedisRestartLosesNoPopup kills Redis under two nodes and brings it back
// empty: webhooks are refused (503, never acknowledged and dropped) while it
// is away, and a popup posted right after it returns reaches the manager —
// live, or through the widget's reconnect when the node cannot replay.
func TestRedisRestartLosesNoPopup(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	a := startNode(t, testConfig(t, "--redis-url", rs.URL()), nil)
	b := startNode(t, testConfig(t, "--redis-url", rs.URL()), nil)
	andy := b.dial("andy", "")
	andy.hello()
	a.event("INCOMING", "andy", "before")
	last := andy.expectCall("INCOMING", "before")["id"].(string)

	rs.Kill()
	if st, _ := a.post("cmd", "event", "type", "COMPLETED", "user", "andy", "callid", "before", "phone", "1"); st != http.StatusServiceUnavailable {
		t.Fatalf("webhook with Redis down: %d, want 503", st)
	}
	if st := a.status("/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %d", st)
	}
	if st := a.status("/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %d", st)
	}

	rs.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, _ := a.post("cmd", "event", "type", "INCOMING", "user", "andy", "callid", "after", "phone", "1")
		if st == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks still refused after Redis came back: %d", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := a.status("/readyz"); st != http.StatusOK {
		t.Fatalf("/readyz after Redis came back: %d", st)
	}

	// Either the frame arrives on the open session, or the node closed it
	// (4002) because Redis came back empty and the widget reconnects.
	select {
	case f, ok := <-andy.frames:
		if ok {
			if f["callid"] != "after" || f["event"] != "INCOMING" {
				t.Fatalf("got %v", f)
			}
			return
		}
		if code := websocket.CloseStatus(<-andy.closed); code != 4002 {
			t.Fatalf("session ended with %d, want 4002 or the frame", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("neither the popup nor a reconnect request within 15s")
	}
	h := b.dial("andy", last).hello()
	if !slices.Contains(activeCallIDs(h), "after") {
		t.Fatalf("after reconnect, active %v lacks the call", activeCallIDs(h))
	}
}

// TestNodeStartsWithRedisDownAndBecomesReadyWhenItComes starts a node while
// Redis is away: the process stays up, /readyz says not ready, webhooks are
// refused, and once Redis answers everything works without a restart.
func TestNodeStartsWithRedisDownAndBecomesReadyWhenItComes(t *testing.T) {
	t.Parallel()
	rs := redistest.Start(t)
	rs.Kill()
	n := startNode(t, testConfig(t, "--redis-url", rs.URL()), nil)
	if st := n.status("/readyz"); st != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with Redis down: %d", st)
	}
	if st := n.status("/healthz"); st != http.StatusOK {
		t.Fatalf("/healthz: %d", st)
	}
	if st, _ := n.post("cmd", "event", "type", "INCOMING", "user", "andy", "callid", "x", "phone", "1"); st != http.StatusServiceUnavailable {
		t.Fatalf("webhook with Redis down: %d", st)
	}
	rs.Restart()
	deadline := time.Now().Add(15 * time.Second)
	for n.status("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready 15s after Redis came up")
		}
		time.Sleep(50 * time.Millisecond)
	}
	c := n.dial("andy", "")
	c.hello()
	n.event("INCOMING", "andy", "y")
	c.expectCall("INCOMING", "y")
}
