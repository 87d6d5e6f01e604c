package redistest

import (
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// clusterNodeTimeout is how long a silent master takes to be failed over:
// small, so a test's failover takes a few seconds.
const clusterNodeTimeout = 1000 * time.Millisecond

// Cluster is a Redis Cluster of three masters, each with one replica, on
// free loopback ports and owned by one test.
type Cluster struct {
	tb    testing.TB
	Nodes []*Server
}

// StartCluster starts six cluster-mode servers, joins them with
// redis-cli --cluster create (three masters, a replica each) and waits until
// every node sees the cluster ok and every replica is in sync.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		tb.Fatalf("redis-cli not found (run scripts/test.sh, which installs it): %v", err)
	}
	c := &Cluster{tb: tb}
	args := []string{"--cluster", "create"}
	for range 6 {
		s := startServer(tb, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout.Milliseconds())))
		c.Nodes = append(c.Nodes, s)
		args = append(args, s.Addr())
	}
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		tb.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitHealthy(60 * time.Second) // generous: CI may run on a loaded machine
	return c
}

// URL is the redis-cluster:// URL naming every node as a seed.
func (c *Cluster) URL() string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}

// waitHealthy waits until every live node reports cluster_state:ok, all
// agree on which nodes own the slots, and every replica's link is up.
func (c *Cluster) waitHealthy(timeout time.Duration) {
	c.tb.Helper()
	ctx := context.Background()
	eventually(c.tb, timeout, "a healthy cluster", func() bool {
		var owners string
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			cl := goredis.NewClient(&goredis.Options{Addr: n.Addr(), MaxRetries: -1})
			info, err1 := cl.ClusterInfo(ctx).Result()
			slots, err2 := cl.ClusterSlots(ctx).Result()
			repl, err3 := cl.Info(ctx, "replication").Result()
			_ = cl.Close()
			if err1 != nil || err2 != nil || err3 != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
				return false
			}
			o := masters(slots)
			if strings.Contains(o, n.Addr()+" ") && !strings.Contains(repl, "state=online") {
				return false // a master whose replica is not attached and in sync yet
			}
			if owners != "" && o != owners {
				return false
			}
			owners = o
		}
		return owners != ""
	})
}

// masters lists, in slot order, each slot range's master address.
func masters(slots []goredis.ClusterSlot) string {
	var b strings.Builder
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			b.WriteString(strconv.Itoa(s.Start) + "=" + s.Nodes[0].Addr + " ")
		}
	}
	return b.String()
}

// MasterOf is the node that owns key's slot now.
func (c *Cluster) MasterOf(key string) *Server {
	c.tb.Helper()
	ctx := context.Background()
	for _, n := range c.Nodes {
		if !n.Alive() {
			continue
		}
		cl := goredis.NewClient(&goredis.Options{Addr: n.Addr(), MaxRetries: -1})
		slot, err1 := cl.ClusterKeySlot(ctx, key).Result()
		slots, err2 := cl.ClusterSlots(ctx).Result()
		_ = cl.Close()
		if err1 != nil || err2 != nil {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
				for _, m := range c.Nodes {
					if m.Addr() == s.Nodes[0].Addr {
						return m
					}
				}
			}
		}
	}
	c.tb.Fatalf("redistest: no node owns %q", key)
	return nil
}

// KillMasterOf kills (SIGKILL) the master owning key's slot, and returns it
// and when.
func (c *Cluster) KillMasterOf(key string) (*Server, time.Time) {
	c.tb.Helper()
	m := c.MasterOf(key)
	m.Kill()
	return m, time.Now()
}

// WaitFailover waits until a replica took over key's slot from old and the
// cluster is ok again; it returns the new master.
func (c *Cluster) WaitFailover(key string, old *Server, timeout time.Duration) *Server {
	c.tb.Helper()
	ctx := context.Background()
	var m *Server
	eventually(c.tb, timeout, "cluster failover", func() bool {
		for _, n := range c.Nodes {
			if !n.Alive() {
				continue
			}
			cl := goredis.NewClient(&goredis.Options{Addr: n.Addr(), MaxRetries: -1})
			info, err1 := cl.ClusterInfo(ctx).Result()
			slot, err2 := cl.ClusterKeySlot(ctx, key).Result()
			slots, err3 := cl.ClusterSlots(ctx).Result()
			_ = cl.Close()
			if err1 != nil || err2 != nil || err3 != nil || !strings.Contains(info, "cluster_state:ok") {
				return false
			}
			for _, s := range slots {
				if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 && s.Nodes[0].Addr != old.Addr() {
					for _, x := range c.Nodes {
						if x.Addr() == s.Nodes[0].Addr {
							m = x
						}
					}
				}
			}
			return m != nil && role(m.Addr()) == "master"
		}
		return false
	})
	return m
}

// Client returns a go-redis cluster client seeded with every node, closed at
// test end. (cmd/callpop builds its own with broker/redis.NewClient, which
// also follows a failover at once.)
func (c *Cluster) Client() *goredis.ClusterClient {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	cl := goredis.NewClusterClient(&goredis.ClusterOptions{Addrs: addrs})
	c.tb.Cleanup(func() { _ = cl.Close() })
	return cl
}
