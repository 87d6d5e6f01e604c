package main

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestIncomingReachesEverySessionOfItsUserAndNoOneElse(t *testing.T) {
	t.Parallel()
	for _, kind := range withHA {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			a, b := cluster(t, kind)
			andy1, andy2, mike := a.dial("andy", ""), b.dial("Andy@acme", ""), b.dial("mike", "")
			andy1.hello()
			andy2.hello()
			mike.hello()
			// Posted to node a; andy2 and mike are on node b.
			a.event("INCOMING", "andy@acme", "call-1", "direction", "in", "groupRealName", "Sales")
			for _, c := range []*client{andy1, andy2} {
				f := c.expectCall("INCOMING", "call-1")
				if f["user"] != "andy" || f["phone"] != "79101234567" || f["groupRealName"] != "Sales" || f["direction"] != "in" {
					t.Fatalf("frame %v", f)
				}
			}
			// mike's next frame is his own call: andy's never reached him.
			a.event("INCOMING", "mike", "call-2")
			mike.expectCall("INCOMING", "call-2")
		})
	}
}

func TestGroupCallAnsweredByOneClosesTheOthers(t *testing.T) {
	t.Parallel()
	for _, kind := range withHA {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			a, b := cluster(t, kind)
			users := []string{"andy", "mike", "daria"}
			clients := map[string]*client{}
			for i, u := range users {
				n := []*node{a, b}[i%2]
				clients[u] = n.dial(u, "")
				clients[u].hello()
			}
			for _, u := range users {
				b.event("INCOMING", u+"@acme", "g-1", "groupRealName", "Sales")
				clients[u].expectCall("INCOMING", "g-1")
			}
			a.event("ACCEPTED", "mike", "g-1")
			clients["mike"].expectCall("ACCEPTED", "g-1")
			for _, u := range []string{"andy", "daria"} {
				f := clients[u].expectCall("CANCELLED", "g-1")
				if f["reason"] != "answered_elsewhere" || f["answered_by"] != "mike" {
					t.Fatalf("%s: %v", u, f)
				}
			}
			// The PBX's own, later CANCELLED for andy changes nothing; the
			// call's end still reaches mike.
			b.event("CANCELLED", "andy", "g-1")
			b.event("COMPLETED", "mike", "g-1")
			clients["mike"].expectCall("COMPLETED", "g-1")
			a.event("INCOMING", "andy", "after")
			clients["andy"].expectCall("INCOMING", "after")
		})
	}
}

func TestHelloListsActiveCallsAndResumeDeliversWhatWasMissed(t *testing.T) {
	t.Parallel()
	for _, kind := range withHA {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			a, b := cluster(t, kind)
			first := a.dial("andy", "")
			first.hello()
			a.event("INCOMING", "andy", "c-1")
			seen := first.expectCall("INCOMING", "c-1")["id"].(string)
			first.conn.CloseNow()

			// A page reloaded mid-call, on the other node, shows the popup.
			h := b.dial("andy", "").hello()
			if ids := activeCallIDs(h); !slices.Equal(ids, []string{"c-1"}) {
				t.Fatalf("active %v, want [c-1]", ids)
			}
			if _, ok := h["recovered"]; ok {
				t.Fatalf("recovered present without since: %v", h)
			}

			// Events while away arrive, in order, after hello, on resume.
			a.event("ACCEPTED", "andy", "c-1")
			a.event("COMPLETED", "andy", "c-1")
			c := b.dial("andy", seen)
			h = c.hello()
			if h["recovered"] != true || len(activeCallIDs(h)) != 0 {
				t.Fatalf("resume hello %v", h)
			}
			c.expectCall("ACCEPTED", "c-1")
			last := c.expectCall("COMPLETED", "c-1")["id"]
			a.event("INCOMING", "andy", "c-2")
			if f := c.expectCall("INCOMING", "c-2"); f["id"] == last {
				t.Fatal("duplicate id")
			}

			// A since the log never held: not recovered, active is the truth.
			h = a.dial("andy", "1-0").hello()
			if h["recovered"] != false || !slices.Equal(activeCallIDs(h), []string{"c-2"}) {
				t.Fatalf("unrecoverable resume hello %v", h)
			}
		})
	}
}

func TestHistoryClosesPopupAndReachesEveryLegOfAPBXRecord(t *testing.T) {
	t.Parallel()
	a, _ := cluster(t, "memory")
	andy, mike := a.dial("andy", ""), a.dial("mike", "")
	andy.hello()
	mike.hello()
	for _, u := range []string{"andy", "mike"} {
		a.event("INCOMING", u, "h-1")
	}
	andy.expectCall("INCOMING", "h-1")
	mike.expectCall("INCOMING", "h-1")
	// Both terminal events were lost; the record is the second chance.
	st, body := a.post("cmd", "history", "type", "in", "user", "pbx", "phone", "79101234567", "start", "20261125T120000Z",
		"duration", "0", "callid", "h-1", "status", "missed")
	if st != http.StatusOK {
		t.Fatalf("history: %d %v", st, body)
	}
	for _, c := range []*client{andy, mike} {
		if f := c.expectCall("CANCELLED", "h-1"); f["reason"] != "history" {
			t.Fatalf("close frame %v", f)
		}
		f := c.next()
		if f["type"] != "history" || f["callid"] != "h-1" || f["status"] != "Missed" {
			t.Fatalf("history frame %v", f)
		}
	}
	if ids := activeCallIDs(a.dial("andy", "").hello()); len(ids) != 0 {
		t.Fatalf("ghost popup after history: %v", ids)
	}
}

func TestBadOrMissingTokenIsRefusedBeforeUpgrade(t *testing.T) {
	t.Parallel()
	a, _ := cluster(t, "memory")
	for name, q := range map[string]string{"missing": "", "bad": "?token=x.y.z", "bad since": "?token=" + a.token("andy") + "&since=oops"} {
		resp, err := http.Get(a.base + "/ws" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusUnauthorized
		if name == "bad since" {
			want = http.StatusBadRequest
		}
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, want)
		}
	}
}

func TestForeignOriginIsRefusedAllowedOriginAccepted(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "--allowed-origins", "https://crm.example.com"), nil)
	for origin, want := range map[string]int{"https://evil.example.org": http.StatusForbidden, "https://crm.example.com": http.StatusSwitchingProtocols} {
		req, _ := http.NewRequest(http.MethodGet, n.base+"/ws?token="+n.token("andy"), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-WebSocket-Version", "13")
		req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("origin %s: %d, want %d", origin, resp.StatusCode, want)
		}
	}
}

func TestShutdownClosesSessionsWithRestartCode(t *testing.T) {
	t.Parallel()
	a, _ := cluster(t, "memory")
	c := a.dial("andy", "")
	c.hello()
	a.stop()
	if code := c.closeCode(); code != 1012 {
		t.Fatalf("close code %d, want 1012", code)
	}
}

func TestWebhookAnswersAtRootToo(t *testing.T) {
	t.Parallel()
	a, _ := cluster(t, "memory")
	resp, err := http.Post(a.base+"/", "application/x-www-form-urlencoded",
		stringsReader(fmt.Sprintf("cmd=event&type=INCOMING&user=andy&callid=r1&phone=1&crm_token=%s", testCRMToken)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /: %d", resp.StatusCode)
	}
	resp, _ = http.Get(a.base + "/webhook")
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("GET /webhook: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

func TestTransferClosesTheOldLegAndRingsTheNewOneInAnyOrder(t *testing.T) {
	t.Parallel()
	a, b := cluster(t, "redis")
	andy, mike := a.dial("andy", ""), b.dial("mike", "")
	andy.hello()
	mike.hello()
	a.event("INCOMING", "andy", "t-1")
	a.event("ACCEPTED", "andy", "t-1")
	andy.expectCall("INCOMING", "t-1")
	andy.expectCall("ACCEPTED", "t-1")
	// The new leg has a new callid, and its ACCEPTED may come before the old
	// leg's TRANSFERRED (docs/pbx-api.md, field note 2).
	b.event("INCOMING", "mike", "t-2")
	b.event("ACCEPTED", "mike", "t-2")
	a.event("TRANSFERRED", "andy", "t-1", "second_callid", "t-2")
	mike.expectCall("INCOMING", "t-2")
	mike.expectCall("ACCEPTED", "t-2")
	if f := andy.expectCall("TRANSFERRED", "t-1"); f["second_callid"] != "t-2" {
		t.Fatalf("TRANSFERRED frame %v", f)
	}
	if ids := activeCallIDs(b.dial("andy", "").hello()); len(ids) != 0 {
		t.Fatalf("andy still has %v", ids)
	}
	if ids := activeCallIDs(a.dial("mike", "").hello()); !slices.Equal(ids, []string{"t-2"}) {
		t.Fatalf("mike has %v, want [t-2]", ids)
	}
}

func TestWebhookFromOutsideThePBXNetworksIsRefused(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "--webhook-allow", "192.0.2.0/24"), nil)
	if st, body := n.post("cmd", "event", "type", "INCOMING", "user", "andy", "callid", "x", "phone", "1"); st != http.StatusForbidden {
		t.Fatalf("webhook from 127.0.0.1 outside the allow-list: %d %v", st, body)
	}
	// Behind a trusted proxy, the forwarded address counts.
	n2 := startNode(t, testConfig(t, "--webhook-allow", "192.0.2.0/24", "--trusted-proxies", "127.0.0.1"), nil)
	req, _ := http.NewRequest(http.MethodPost, n2.base+"/webhook", stringsReader("cmd=webhook&crm_token="+testCRMToken))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "192.0.2.10")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook forwarded from the PBX network: %d", resp.StatusCode)
	}
}

func TestConnectionFloodFromOneAddressIsLimited(t *testing.T) {
	t.Parallel()
	n := startNode(t, testConfig(t, "--connect-rate", "1"), nil)
	limited := 0
	for range 5 {
		resp, err := http.Get(n.base + "/ws?token=" + n.token("andy"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("5 connections at once from one address at 1/s were all let through")
	}
}

func TestRepeatedWebhooksAreAppliedOnceAndAnswered200(t *testing.T) {
	t.Parallel()
	for _, kind := range brokers {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			a, b := cluster(t, kind)
			c := a.dial("andy", "")
			c.hello()
			for _, n := range []*node{a, b, a} { // the same webhook, three times, on any node
				n.event("INCOMING", "andy", "d-1")
			}
			for _, n := range []*node{b, a} {
				n.event("ACCEPTED", "andy@acme", "d-1")
			}
			c.expectCall("INCOMING", "d-1")
			c.expectCall("ACCEPTED", "d-1")
			for range 2 {
				st, _ := b.post("cmd", "history", "type", "in", "user", "andy", "phone", "79101234567",
					"start", "20261125T120000Z", "duration", "30", "callid", "d-1", "status", "Success")
				if st != http.StatusOK {
					t.Fatalf("repeated history: %d", st)
				}
			}
			c.expectCall("COMPLETED", "d-1") // closed by the record, once
			if f := c.next(); f["type"] != "history" {
				t.Fatalf("got %v, want the history frame", f)
			}
			a.event("INCOMING", "andy", "d-2") // the next frame is new: nothing was repeated
			c.expectCall("INCOMING", "d-2")
			_, body := a.api("andy", http.MethodGet, "/api/calls", "")
			if calls := body["calls"].([]any); len(calls) != 1 {
				t.Fatalf("recent calls after a repeated record: %v", calls)
			}
		})
	}
}

// A client may open a connection and send nothing on it (a Go Transport's
// spare from a dial race, a browser's preconnect); http.Server.Shutdown
// would wait five seconds for it, past this node's three.
func TestShutdownClosesAConnectionThatNeverSentARequest(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ShutdownTimeout = 3 * time.Second
	n := startNode(t, cfg, nil)
	c := n.dial("andy", "")
	c.hello()
	raw, err := net.Dial("tcp", strings.TrimPrefix(n.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for deadline := time.Now().Add(5 * time.Second); n.srv.fresh.count() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the node never counted the connection as waiting for a request")
		}
	}
	n.stop() // fails the test when the drain overruns its timeout
	if code := c.closeCode(); code != 1012 {
		t.Fatalf("close code %d, want 1012", code)
	}
	_ = raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := raw.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("fresh connection still open after the drain: %v", err)
	}
}
