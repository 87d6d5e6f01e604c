package redis_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/brokertest"
	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
)

func TestBrokerSuite(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	brokertest.Run(t, func(t *testing.T, o brokertest.Options) (event.Broker, event.Broker) {
		cfg := redis.Config{LogSize: o.LogSize, Now: o.Now}
		a := redis.New(srv.Client(), cfg, zaptest.NewLogger(t))
		b := redis.New(srv.Client(), cfg, zaptest.NewLogger(t))
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	})
}

// TestBrokerSuiteOnSentinel: the suite through go-redis's failover client.
func TestBrokerSuiteOnSentinel(t *testing.T) {
	t.Parallel()
	set := redistest.StartSentinel(t)
	runSuiteOn(t, set.URL())
}

// TestBrokerSuiteOnCluster: the suite on a three-master Redis Cluster, where
// commits take two steps and frames travel on sharded channels.
func TestBrokerSuiteOnCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	runSuiteOn(t, c.URL())
}

// runSuiteOn runs brokertest with two nodes, each with its own client built
// from url as cmd/callpop builds it.
func runSuiteOn(t *testing.T, url string) {
	brokertest.Run(t, func(t *testing.T, o brokertest.Options) (event.Broker, event.Broker) {
		cfg := redis.Config{LogSize: o.LogSize, Now: o.Now}
		var nodes [2]*redis.Broker
		for i := range nodes {
			rdb, err := redis.NewClient(url)
			if err != nil {
				t.Fatal(err)
			}
			nodes[i] = redis.New(rdb, cfg, zaptest.NewLogger(t))
			t.Cleanup(func() { nodes[i].Close(); rdb.Close() })
		}
		return nodes[0], nodes[1]
	})
}

// TestMain fails the package when any test leaves a goroutine behind. The
// exception is go-redis's redial of a node a failover test killed: it
// retries once a second and ends at its next attempt after the client closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// TestMarkSeenOutlivesTheCallState: recent calls are kept for a month, a
// call's record for a day. A missed call whose record expired is still
// marked, and its record is not created again.
func TestMarkSeenOutlivesTheCallState(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	rdb := srv.Client()
	b := redis.New(rdb, redis.Config{}, zaptest.NewLogger(t))
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	rec := event.Record{CallID: "old", User: "andy", Phone: "79101234567", Direction: event.DirIn, Status: event.Missed, Start: time.Now()}
	if err := b.Update(ctx, "old", func(r *event.CallState) []event.Out { return r.ApplyHistory(rec, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	if n, err := rdb.Del(ctx, redis.DefaultPrefix+"call:old").Result(); err != nil || n != 1 {
		t.Fatalf("expiring the record by hand: %d, %v", n, err)
	}
	if n, err := b.MarkSeen(ctx, "andy", []string{"old"}); err != nil || n != 1 {
		t.Fatalf("marked %d, %v; want 1", n, err)
	}
	if n, _ := rdb.Exists(ctx, redis.DefaultPrefix+"call:old").Result(); n != 0 {
		t.Fatal("marking seen created the expired call record again")
	}
	if recs, err := b.RecentCalls(ctx, "andy", 10); err != nil || len(recs) != 1 || !recs[0].Seen {
		t.Fatalf("recent calls %+v, %v", recs, err)
	}
}
