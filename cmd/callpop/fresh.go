package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// freshGrace is how long a drain waits for a request on a connection that
// has not sent one yet: one already on its way arrives well within it.
const freshGrace = time.Second

// freshConns tracks connections that have not sent a request yet.
// http.Server.Shutdown waits up to five seconds for such a connection to
// become idle; HTTP clients and browsers open them speculatively (a Go
// Transport keeps the spare one from a dial race, a browser preconnects), so
// without this a drain could spend five seconds on a socket with nothing in
// it, or overrun a shorter SHUTDOWN_TIMEOUT.
type freshConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newFreshConns() *freshConns { return &freshConns{conns: map[net.Conn]struct{}{}} }

// connState is the server's ConnState hook. It runs twice per request on a
// kept-alive connection; only an active connection turns idle, so idle is
// skipped (the connection left the set on turning active).
func (f *freshConns) connState(c net.Conn, st http.ConnState) {
	if st == http.StateIdle {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if st == http.StateNew {
		f.conns[c] = struct{}{}
	} else {
		delete(f.conns, c)
	}
}

// count is how many connections are waiting for their first request.
func (f *freshConns) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}

// closeAll closes the connections that are still without a request; each
// one's server goroutine then sees the close and ends.
func (f *freshConns) closeAll() int {
	f.mu.Lock()
	conns := make([]net.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns { // outside the lock: a TLS close writes an alert, and every connection's hook takes it
		_ = c.Close()
	}
	return len(conns)
}

// closeAfterGrace closes what is still fresh after freshGrace, unless done
// closes first.
func (f *freshConns) closeAfterGrace(done <-chan struct{}) int {
	t := time.NewTimer(freshGrace)
	defer t.Stop()
	select {
	case <-t.C:
		return f.closeAll()
	case <-done:
		return 0
	}
}
