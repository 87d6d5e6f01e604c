package redis_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/internal/redistest"
	"github.com/callpop/callpop/tenant"
	tredis "github.com/callpop/callpop/tenant/redis"
)

const crmTok = "crm-token-0123456789"

func acme(id string) *tenant.Tenant {
	return &tenant.Tenant{ID: id, Enabled: true, CRMTokens: []tenant.Secret{{Value: crmTok}}}
}

// node is one callpop node's store, running until the test ends.
func node(tb testing.TB, srv redisServer, cfg tredis.Config) *tredis.Store {
	tb.Helper()
	s := tredis.New(srv.Client(), cfg, zaptest.NewLogger(tb))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	return s
}

func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func has(s *tredis.Store, id string) func() bool {
	return func() bool { _, ok := s.Get(id); return ok }
}

// redisServer is one Redis or a Redis Cluster.
type redisServer interface {
	Client() goredis.UniversalClient
}

type single struct{ *redistest.Server }

func (s single) Client() goredis.UniversalClient { return s.Server.Client() }

type cluster struct{ *redistest.Cluster }

func (c cluster) Client() goredis.UniversalClient { return c.Cluster.Client() }

// TestAChangeOnOneNodeIsSeenOnTheOther: create, disable and delete on node
// A; node B's registry and watchers follow, on one Redis and on a Redis
// Cluster (the registry's keys share the {tenants} slot).
func TestAChangeOnOneNodeIsSeenOnTheOther(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		testChangeSeen(t, single{redistest.Start(t)})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		testChangeSeen(t, cluster{redistest.StartCluster(t)})
	})
}

func testChangeSeen(t *testing.T, srv redisServer) {
	a, b := node(t, srv, tredis.Config{}), node(t, srv, tredis.Config{})
	var disabled atomic.Int32
	b.Watch(func(old, new *tenant.Tenant) {
		if old != nil && new != nil && old.Enabled && !new.Enabled {
			disabled.Add(1)
		}
	})
	ctx := context.Background()
	if err := a.Create(ctx, acme("acme.megapbx.ru")); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Get("acme.megapbx.ru"); !ok {
		t.Fatal("the writing node does not see its own write at once")
	}
	eventually(t, "B sees the new tenant", has(b, "acme.megapbx.ru"))
	if _, err := a.Update(ctx, "acme.megapbx.ru", func(t *tenant.Tenant) error { t.Enabled = false; return nil }); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's watcher is told of the disabling", func() bool { return disabled.Load() == 1 })
	if got, _ := b.Get("acme.megapbx.ru"); got.Enabled {
		t.Error("B still has the tenant enabled")
	}
	if err := a.Delete(ctx, "acme.megapbx.ru"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees the deletion", func() bool { return !has(b, "acme.megapbx.ru")() })
	if n := disabled.Load(); n != 1 {
		t.Errorf("watcher told of the disabling %d times, want once", n)
	}
}

// TestAMissedAnnouncementIsRepairedByTheReload: a change written without an
// announcement (as if the node was disconnected) arrives with the periodic
// reload.
func TestAMissedAnnouncementIsRepairedByTheReload(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	b := node(t, single{srv}, tredis.Config{Reload: 100 * time.Millisecond})
	// B sees an announced tenant: it is subscribed and past its first load,
	// so the quiet one can only come from a later reload.
	if err := node(t, single{srv}, tredis.Config{}).Create(context.Background(), acme("marker.ru")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees the announced tenant", has(b, "marker.ru"))
	if err := srv.Client().HSet(context.Background(), tredis.DefaultKey, "quiet.ru",
		`{"id":"quiet.ru","enabled":true,"crm_tokens":[{"value":"`+crmTok+`"}]}`).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees the unannounced tenant", has(b, "quiet.ru"))
}

// TestRedisRestartRecovers: Redis is killed and started again (its data
// lost); the nodes keep serving their registry meanwhile, resubscribe, and
// a change made afterwards reaches the other node.
func TestRedisRestartRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	a, b := node(t, single{srv}, tredis.Config{}), node(t, single{srv}, tredis.Config{})
	ctx := context.Background()
	if err := a.Create(ctx, acme("before.ru")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B sees the first tenant", has(b, "before.ru"))
	srv.Kill()
	if _, ok := b.Get("before.ru"); !ok {
		t.Fatal("B dropped its registry when Redis went away")
	}
	srv.Restart()
	eventually(t, "A writes again", func() bool { return a.Put(ctx, acme("after.ru")) == nil })
	eventually(t, "B sees the tenant written after the restart", has(b, "after.ru"))
}

// TestConcurrentUpdatesLoseNothing: two nodes rotate the same tenant's
// token at once; WATCH makes each rotation see the one before it, on one
// Redis and on a Redis Cluster.
func TestConcurrentUpdatesLoseNothing(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		testConcurrentUpdates(t, single{redistest.Start(t)})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		testConcurrentUpdates(t, cluster{redistest.StartCluster(t)})
	})
}

func testConcurrentUpdates(t *testing.T, srv redisServer) {
	a, b := node(t, srv, tredis.Config{}), node(t, srv, tredis.Config{})
	ctx := context.Background()
	if err := a.Create(ctx, acme("acme.ru")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, s := range []*tredis.Store{a, b} {
		wg.Go(func() {
			for range 10 {
				if _, err := s.Update(ctx, "acme.ru", func(t *tenant.Tenant) error {
					t.Limits.SessionsPerUser++
					return nil
				}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	eventually(t, "both nodes count 20 edits", func() bool {
		x, _ := a.Get("acme.ru")
		y, _ := b.Get("acme.ru")
		return x.Limits.SessionsPerUser == 20 && y.Limits.SessionsPerUser == 20
	})
}

func TestStoreErrors(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s := tredis.New(srv.Client(), tredis.Config{}, zaptest.NewLogger(t))
	ctx := context.Background()
	if err := s.Create(ctx, acme("acme.ru")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, acme("acme.ru")); !errors.Is(err, tenant.ErrExists) {
		t.Errorf("second Create: %v", err)
	}
	if _, err := s.Update(ctx, "x.ru", func(*tenant.Tenant) error { return nil }); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("Update unknown: %v", err)
	}
	if err := s.Delete(ctx, "x.ru"); !errors.Is(err, tenant.ErrNotFound) {
		t.Errorf("Delete unknown: %v", err)
	}
	if err := s.Put(ctx, &tenant.Tenant{ID: "bad.ru"}); !errors.Is(err, tenant.ErrInvalid) {
		t.Errorf("Put invalid: %v", err)
	}
	ts, err := s.List(ctx)
	if err != nil || len(ts) != 1 || ts[0].ID != "acme.ru" {
		t.Errorf("List: %v %v", ts, err)
	}
}

// BenchmarkChangeSeenOnAnotherNode is the time from a Put on node A until
// node B's registry holds the change, through a real redis-server
// (docs/benchmarks.md).
func BenchmarkChangeSeenOnAnotherNode(b *testing.B) {
	srv := redistest.Start(b)
	a, other := node(b, single{srv}, tredis.Config{}), node(b, single{srv}, tredis.Config{})
	ctx := context.Background()
	t := acme("acme.ru")
	seen := make(chan int, 1)
	other.Watch(func(_, n *tenant.Tenant) {
		if n != nil {
			select {
			case seen <- n.Limits.SessionsPerUser:
			default:
			}
		}
	})
	if err := a.Put(ctx, t); err != nil {
		b.Fatal(err)
	}
	<-seen
	var worst time.Duration
	for i := 1; b.Loop(); i++ {
		t.Limits.SessionsPerUser = i
		start := time.Now()
		if err := a.Put(ctx, t); err != nil {
			b.Fatal(err)
		}
		for <-seen != i {
		}
		worst = max(worst, time.Since(start))
	}
	b.ReportMetric(float64(worst.Microseconds()), "worst-µs")
}
