// Package redistest starts a real redis-server for a test, on a free port,
// so a test can kill and restart it. Tests never use a mock Redis.
package redistest

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Server is a redis-server process owned by one test.
type Server struct {
	tb    testing.TB
	port  int
	dir   string
	extra []string // more redis-server arguments (replication, cluster mode)
	cmd   *exec.Cmd
}

// Start runs redis-server on a free loopback port and stops it when the test
// ends. It fails the test when redis-server is missing: the test command
// installs it (scripts/test.sh).
func Start(tb testing.TB) *Server {
	tb.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		tb.Fatalf("redis-server not found (run scripts/test.sh, which installs it): %v", err)
	}
	return startServer(tb)
}

func startServer(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s := &Server{tb: tb, port: freePort(tb), dir: tb.TempDir(), extra: extra}
	s.Restart()
	tb.Cleanup(s.Kill)
	return s
}

// Addr is host:port of the server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a go-redis client for the server, closed at test end.
func (s *Server) Client() *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr()})
	s.tb.Cleanup(func() { _ = c.Close() })
	return c
}

// Kill stops the server at once (SIGKILL), as a crash would. Data is lost:
// persistence is off.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart starts the server again on the same port and waits until it
// answers PING.
func (s *Server) Restart() {
	s.tb.Helper()
	s.Kill()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning",
		// A replica's first sync starts at once, not after the default 5 s.
		"--repl-diskless-sync-delay", "0"}, s.extra...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	waitPing(s.tb, s.Addr())
}

// Alive reports whether the process runs (it was not killed).
func (s *Server) Alive() bool { return s.cmd != nil }

// waitPing waits until the server on addr answers PING.
func waitPing(tb testing.TB, addr string) {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: redis on %s did not answer: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eventually polls cond every 20 ms until it holds or timeout passes, and
// fails the test with what then.
func eventually(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	eventuallyWhy(tb, timeout, what, func() (bool, string) { return cond(), "" })
}

// eventuallyWhy is eventually whose condition also says what it last saw,
// for the failure message. The timeouts bound a set-up's wait, not its speed:
// they are generous, since CI may run on a loaded machine.
func eventuallyWhy(tb testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("redistest: %s not within %v; last seen: %s", what, timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort(tb testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
