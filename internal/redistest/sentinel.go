package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// SentinelMaster is the master name the sentinels of StartSentinel watch.
const SentinelMaster = "callpop"

// Sentinel timings: small, so a failover takes about two seconds rather than
// the defaults' half minute.
const (
	sentinelDownAfter       = 500 * time.Millisecond
	sentinelFailoverTimeout = 2 * time.Second
)

// Sentinel is a master, its replica and three redis-sentinels watching
// them, all on free loopback ports and owned by one test.
type Sentinel struct {
	tb        testing.TB
	Nodes     []*Server // [0] starts as master, [1] as its replica
	sentinels []*sentinelProc
}

type sentinelProc struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

func (p *sentinelProc) addr() string { return "127.0.0.1:" + strconv.Itoa(p.port) }

// StartSentinel starts the set and waits until the sentinels know the
// replica and each other, so a failover can be agreed at once.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	for _, bin := range []string{"redis-server", "redis-sentinel"} {
		if _, err := exec.LookPath(bin); err != nil {
			tb.Fatalf("%s not found (run scripts/test.sh, which installs it): %v", bin, err)
		}
	}
	master := startServer(tb)
	replica := startServer(tb, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	s := &Sentinel{tb: tb, Nodes: []*Server{master, replica}}
	waitReplicaSynced(tb, replica.Addr())
	for range 3 {
		p := &sentinelProc{port: freePort(tb), dir: tb.TempDir()}
		s.sentinels = append(s.sentinels, p)
		s.startSentinel(p, master.port)
	}
	tb.Cleanup(s.stopSentinels)
	ctx := context.Background()
	// Sentinels find the replica in the master's INFO and each other by
	// hello messages every 2 s: seconds on an idle machine, longer on a
	// loaded one.
	eventuallyWhy(tb, 60*time.Second, "sentinels discovering each other and the replica", func() (bool, string) {
		for i, p := range s.sentinels {
			c := goredis.NewSentinelClient(&goredis.Options{Addr: p.addr()})
			others, err1 := c.Sentinels(ctx, SentinelMaster).Result()
			replicas, err2 := c.Replicas(ctx, SentinelMaster).Result()
			_ = c.Close()
			if err1 != nil || err2 != nil || len(others) < 2 || len(replicas) < 1 ||
				strings.Contains(fmt.Sprint(replicas), "s_down") {
				return false, fmt.Sprintf("sentinel %d: %d other sentinels (%v), replicas %v (%v)", i, len(others), err1, replicas, err2)
			}
		}
		return true, ""
	})
	return s
}

func (s *Sentinel) startSentinel(p *sentinelProc, masterPort int) {
	conf := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[3]s %[5]d
sentinel failover-timeout %[3]s %[6]d
sentinel parallel-syncs %[3]s 1
`, p.port, p.dir, SentinelMaster, masterPort, sentinelDownAfter.Milliseconds(), sentinelFailoverTimeout.Milliseconds())
	path := filepath.Join(p.dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		s.tb.Fatalf("redistest: %v", err)
	}
	cmd := exec.Command("redis-sentinel", path, "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("redistest: start redis-sentinel: %v", err)
	}
	p.cmd = cmd
	waitPing(s.tb, p.addr())
}

func (s *Sentinel) stopSentinels() {
	for _, p := range s.sentinels {
		if p.cmd != nil {
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
			p.cmd = nil
		}
	}
}

// URL is the redis-sentinel:// URL of the set.
func (s *Sentinel) URL() string {
	addrs := make([]string, len(s.sentinels))
	for i, p := range s.sentinels {
		addrs[i] = p.addr()
	}
	return "redis-sentinel://" + strings.Join(addrs, ",") + "/" + SentinelMaster
}

// MasterAddr is the master's address as the sentinels report it now.
func (s *Sentinel) MasterAddr() string {
	s.tb.Helper()
	ctx := context.Background()
	for _, p := range s.sentinels {
		c := goredis.NewSentinelClient(&goredis.Options{Addr: p.addr()})
		hp, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
		_ = c.Close()
		if err == nil && len(hp) == 2 {
			return net.JoinHostPort(hp[0], hp[1])
		}
	}
	s.tb.Fatal("redistest: no sentinel answers")
	return ""
}

// Master is the server the sentinels report as master.
func (s *Sentinel) Master() *Server {
	s.tb.Helper()
	addr := s.MasterAddr()
	for _, n := range s.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	s.tb.Fatalf("redistest: master %s is none of ours", addr)
	return nil
}

// KillMaster kills the current master (SIGKILL) and returns it and when.
func (s *Sentinel) KillMaster() (*Server, time.Time) {
	s.tb.Helper()
	m := s.Master()
	m.Kill()
	return m, time.Now()
}

// WaitFailover waits until every sentinel names a master other than old
// and that master answers as a master; it returns the new master.
func (s *Sentinel) WaitFailover(old *Server, timeout time.Duration) *Server {
	s.tb.Helper()
	ctx := context.Background()
	var addr, seen string
	defer func() {
		if s.tb.Failed() {
			s.tb.Logf("redistest: sentinels last said %s", seen)
		}
	}()
	eventually(s.tb, timeout, "sentinel failover", func() bool {
		addr, seen = "", ""
		for _, p := range s.sentinels {
			c := goredis.NewSentinelClient(&goredis.Options{Addr: p.addr()})
			hp, err := c.GetMasterAddrByName(ctx, SentinelMaster).Result()
			_ = c.Close()
			seen += fmt.Sprint(hp, err, " ")
			if err != nil || len(hp) != 2 {
				return false
			}
			a := net.JoinHostPort(hp[0], hp[1])
			if a == old.Addr() || (addr != "" && a != addr) {
				return false
			}
			addr = a
		}
		return role(addr) == "master"
	})
	for _, n := range s.Nodes {
		if n.Addr() == addr {
			return n
		}
	}
	s.tb.Fatalf("redistest: new master %s is none of ours", addr)
	return nil
}

// role is what ROLE says first on addr ("" when it does not answer).
func role(addr string) string {
	c := goredis.NewClient(&goredis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	v, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(v) == 0 {
		return ""
	}
	r, _ := v[0].(string)
	return r
}

// waitReplicaSynced waits until the replica on addr has its master link up.
func waitReplicaSynced(tb testing.TB, addr string) {
	tb.Helper()
	c := goredis.NewClient(&goredis.Options{Addr: addr})
	defer c.Close()
	eventually(tb, 30*time.Second, "replica sync on "+addr, func() bool {
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
}
