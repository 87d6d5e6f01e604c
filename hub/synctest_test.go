package hub_test

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/hub"
)

// pipeNet is a network inside a synctest bubble: the test dials net.Pipe
// connections and the server accepts their far ends, so every wait is on
// channels and the bubble's fake clock moves as soon as all are waiting. The
// hub serves such a connection with a reader goroutine (hub.WithoutPoller),
// so these tests cover its timing logic, not epoll.
type pipeNet struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newPipeNet() *pipeNet { return &pipeNet{conns: make(chan net.Conn), done: make(chan struct{})} }

func (p *pipeNet) Accept() (net.Conn, error) {
	select {
	case c := <-p.conns:
		return c, nil
	case <-p.done:
		return nil, net.ErrClosed
	}
}

func (p *pipeNet) Close() error { p.once.Do(func() { close(p.done) }); return nil }

func (p *pipeNet) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

func (p *pipeNet) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	select {
	case p.conns <- server:
		return client, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pipeHub is a hub served over a pipeNet, torn down at the bubble's end.
type pipeHub struct {
	*hub.Hub
	jwt  *auth.JWT
	http *http.Client
}

func newPipeHub(t *testing.T, cfg hub.Config) *pipeHub {
	t.Helper()
	h := hub.New(hub.WithoutPoller(cfg), memory.New(memory.Config{}), zaptest.NewLogger(t), prometheus.NewRegistry())
	j, err := auth.NewJWT(secret)
	if err != nil {
		t.Fatal(err)
	}
	pn := newPipeNet()
	srv := &http.Server{Handler: j.RequireUser(h)}
	served := make(chan struct{})
	go func() { _ = srv.Serve(pn); close(served) }()
	tr := &http.Transport{DialContext: pn.dial}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(ctx)
		_ = srv.Close()
		<-served
		tr.CloseIdleConnections()
	})
	return &pipeHub{Hub: h, jwt: j, http: &http.Client{Transport: tr}}
}

func (h *pipeHub) dial(t *testing.T, user string, ttl time.Duration) *websocket.Conn {
	t.Helper()
	tok, err := h.jwt.Mint(user, ttl)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := websocket.Dial(context.Background(), "ws://pipe/", &websocket.DialOptions{
		HTTPClient: h.http, HTTPHeader: http.Header{"Authorization": {"Bearer " + tok}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// TestSessionIsClosedWhenItsTokenExpires, on the bubble's clock: a session that
// answers every ping stays open until its token's exp and is closed with
// 4001 within one expiry check (a 25th of the ping interval) of it — no real
// second waited.
func TestSessionIsClosedWhenItsTokenExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPipeHub(t, hub.Config{})
		start := time.Now()
		c := h.dial(t, "andy", time.Hour)
		if f := read(t, c); f["type"] != "hello" {
			t.Fatalf("first frame %v, want hello", f)
		}
		// The bubble's clock: waiting two hours costs nothing.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Hour)
		defer cancel()
		var code websocket.StatusCode
		for {
			if _, _, err := c.Read(ctx); err != nil {
				code = websocket.CloseStatus(err)
				break
			}
		}
		if code != event.CloseTokenExpired {
			t.Fatalf("closed with %d, want %d", code, event.CloseTokenExpired)
		}
		// JWT times have whole seconds, and the hub checks expiry once per
		// 25th of its ping interval.
		late := hub.DefaultPingInterval/25 + time.Second
		if got := time.Since(start); got < time.Hour-time.Second || got > time.Hour+late {
			t.Errorf("session ended after %v, want its token's hour (+ up to %v)", got, late)
		}
	})
}

// TestPeerThatStopsAnsweringPingsIsReaped, on the bubble's clock: a widget
// that keeps reading answers every ping and stays for ten minutes; one that
// stops reading is dropped within a ping round and a write timeout.
func TestPeerThatStopsAnsweringPingsIsReaped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newPipeHub(t, hub.Config{})
		alive := h.dial(t, "andy", 24*time.Hour)
		read(t, alive)
		ended := make(chan error, 1)
		go func() { // a live widget keeps reading, so it answers pings
			for {
				if _, _, err := alive.Read(context.Background()); err != nil {
					ended <- err
					return
				}
			}
		}()
		dead := h.dial(t, "mike", 24*time.Hour)
		read(t, dead) // then never reads again: pongs never come back
		synctest.Wait()
		if n := h.Sessions(); n != 2 {
			t.Fatalf("%d sessions, want 2", n)
		}
		time.Sleep(hub.DefaultPingInterval + 2*hub.DefaultWriteTimeout)
		synctest.Wait()
		if n := h.Sessions(); n != 1 {
			t.Fatalf("%d sessions a ping round after mike stopped reading, want andy's only", n)
		}
		time.Sleep(10 * time.Minute) // many ping rounds, each answered
		synctest.Wait()
		select {
		case err := <-ended:
			t.Fatalf("the live session ended: %v", err)
		default:
		}
		if n := h.Sessions(); n != 1 {
			t.Fatalf("%d sessions after ten minutes, want the live one", n)
		}
	})
}
