package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// wsURL is n's socket URL with query q.
func (n *node) wsURL(q string) string {
	return strings.Replace(n.base, "http", "ws", 1) + "/ws?" + q
}

// dialStatus tries to open a socket at u and returns the HTTP status of the
// answer (101 when it opened; the socket is closed again).
func dialStatus(t *testing.T, u string, h http.Header) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err == nil {
		conn.CloseNow()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", u, err)
	}
	return resp.StatusCode
}

// TestSocketTicketOpensOneSocketOnAnyNode: a ticket issued by one node opens
// a socket on the other (the ticket is kept in the broker), once only.
func TestSocketTicketOpensOneSocketOnAnyNode(t *testing.T) {
	t.Parallel()
	for _, kind := range brokers {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			a, b := cluster(t, kind)
			tk := a.ticket("andy")
			if len(tk) < 40 || strings.ContainsAny(tk, "+/=") {
				t.Fatalf("ticket %q: want ≥ 256 random bits, URL-safe", tk)
			}
			c := b.dialURL("andy", b.wsURL("ticket="+tk))
			if f := c.hello(); f["user"] != "andy" {
				t.Fatalf("hello %v, want andy's", f)
			}
			a.event("INCOMING", "andy", "tk-1")
			c.expectCall("INCOMING", "tk-1")
			for _, n := range []*node{a, b} {
				if st := dialStatus(t, n.wsURL("ticket="+tk), nil); st != http.StatusUnauthorized {
					t.Errorf("a used ticket on node %s: %d, want 401", n.base, st)
				}
			}
		})
	}
}

func TestSocketTicketIsRefusedWhenUnknownMalformedOrItsTokenExpired(t *testing.T) {
	t.Parallel()
	a, _ := cluster(t, "memory")
	for name, q := range map[string]string{
		"unknown":   "ticket=" + strings.Repeat("A", 43),
		"malformed": "ticket=x",
		"empty":     "ticket=",
	} {
		if st := dialStatus(t, a.wsURL(q), nil); st != http.StatusUnauthorized {
			t.Errorf("%s ticket: %d, want 401", name, st)
		}
	}
}

// TestAPITakesTheTokenInTheHeaderOnly: /api takes the token in the
// Authorization header only — a token in a URL lands in access logs.
func TestAPITakesTheTokenInTheHeaderOnly(t *testing.T) {
	t.Parallel()
	a, _ := cluster(t, "memory")
	for _, path := range []string{"/api/ws-ticket", "/api/calls"} {
		method := http.MethodPost
		if path == "/api/calls" {
			method = http.MethodGet
		}
		req, _ := http.NewRequest(method, a.base+path+"?token="+a.token("andy"), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s %s?token=…: %d, want 401", method, path, resp.StatusCode)
		}
	}
	expired, err := a.srv.jwt.Mint("andy", -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, a.base+"/api/ws-ticket", nil)
	req.Header.Set("Authorization", "Bearer "+expired)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("ticket for a token expired a second ago: %d, want 401", resp.StatusCode)
	}
}

// TestLegacyTokenSocketStillOpensAndIsCounted: widgets cached from before
// tickets keep working for one release, and operators can see them; a token
// that expired a second ago is refused before the upgrade (401), never
// upgraded and then closed.
func TestLegacyTokenSocketStillOpensAndIsCounted(t *testing.T) {
	t.Parallel()
	a, _ := cluster(t, "memory")
	legacy := func() float64 { return testutil.ToFloat64(a.srv.legacyTokens) }
	if st := dialStatus(t, a.wsURL("token="+a.token("andy")), nil); st != http.StatusSwitchingProtocols {
		t.Fatalf("legacy ?token= socket: %d, want 101", st)
	}
	if got := legacy(); got != 1 {
		t.Errorf("legacy sockets counted %v, want 1", got)
	}
	expired, err := a.srv.jwt.Mint("andy", -time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if st := dialStatus(t, a.wsURL("token="+expired), nil); st != http.StatusUnauthorized {
		t.Errorf("legacy socket with a token expired a second ago: %d, want 401", st)
	}
	// Clients that can set headers (the load tool, servers) use one.
	h := http.Header{"Authorization": {"Bearer " + a.token("andy")}}
	if st := dialStatus(t, a.wsURL(""), h); st != http.StatusSwitchingProtocols {
		t.Errorf("socket with the token in the header: %d, want 101", st)
	}
}
