package redistest_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/internal/redistest"
)

// TestSentinelPromotesReplica: the set fails over when its master dies, and
// go-redis's failover client follows.
func TestSentinelPromotesReplica(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t)
	rdb, err := redis.NewClient(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	waitReplicated(t, s.Nodes[1].Client(), "k")
	old, killed := s.KillMaster()
	m := s.WaitFailover(old, 15*time.Second)
	t.Logf("promoted %s %v after the kill", m.Addr(), time.Since(killed).Round(10*time.Millisecond))
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("after failover: %q, %v", v, err)
	}
}

// TestClusterPromotesReplica: a cluster's replica takes over its dead
// master's slots, and go-redis's cluster client follows.
func TestClusterPromotesReplica(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	rdb, err := redis.NewClient(c.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous: wait until the replica has the write.
	if n, err := c.MasterOf("k").Client().Wait(ctx, 1, time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT: %d replicas, %v", n, err)
	}
	old, killed := c.KillMasterOf("k")
	m := c.WaitFailover("k", old, 20*time.Second)
	t.Logf("promoted %s %v after the kill", m.Addr(), time.Since(killed).Round(10*time.Millisecond))
	// The first command may fail against the dead master: it makes the
	// client re-read the slot map (redis.NewClient's hook).
	deadline := time.Now().Add(5 * time.Second)
	for {
		v, err := rdb.Get(ctx, "k").Result()
		if err == nil && v == "v" {
			break
		}
		if time.Now().After(deadline) {
			for _, n := range c.Nodes {
				if n.Alive() {
					info, _ := n.Client().Info(ctx, "replication").Result()
					t.Logf("%s: exists %v %.80s", n.Addr(), n.Client().Exists(ctx, "k").Val(), info)
				}
			}
			t.Fatalf("after failover: %q, %v", v, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("client follows %v after the kill", time.Since(killed).Round(10*time.Millisecond))
}

func waitReplicated(t *testing.T, c *goredis.Client, key string) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if n, _ := c.Exists(context.Background(), key).Result(); n == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s not replicated", key)
}
