package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
)

// A Redis without callpop's scripts (a fresh one, or one restarted or
// promoted: Redis does not replicate its script cache) is sent each script
// once, not once per command that found it missing: many webhooks at once
// must not turn into a storm of SCRIPT LOADs (and, on a cluster, of slot-map
// reloads) just as Redis comes back.
func TestAMissingScriptIsLoadedOnceForEveryWaitingCommand(t *testing.T) {
	t.Parallel()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		srv := redistest.Start(t)
		testScriptLoads(t, srv.Client(), []*goredis.Client{srv.Client()})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		c := redistest.StartCluster(t)
		var masters []*goredis.Client
		var mu sync.Mutex
		cl := c.Client()
		err := cl.ForEachMaster(context.Background(), func(ctx context.Context, m *goredis.Client) error {
			mu.Lock() // called for the masters concurrently
			defer mu.Unlock()
			masters = append(masters, goredis.NewClient(&goredis.Options{Addr: m.Options().Addr}))
			return nil
		})
		if err != nil || len(masters) != 3 {
			t.Fatalf("masters: %d, %v", len(masters), err)
		}
		t.Cleanup(func() {
			for _, m := range masters {
				m.Close()
			}
		})
		testScriptLoads(t, cl, masters)
	})
}

func testScriptLoads(t *testing.T, rdb goredis.UniversalClient, masters []*goredis.Client) {
	ctx := context.Background()
	b := redis.New(rdb, redis.Config{}, zaptest.NewLogger(t))
	t.Cleanup(func() { b.Close() })
	for _, m := range masters {
		if err := m.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if err := m.ConfigResetStat(ctx).Err(); err != nil {
			t.Fatal(err)
		}
	}
	const n = 200
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			e := event.Event{Type: event.Incoming, CallID: fmt.Sprintf("load-%d", i), User: fmt.Sprintf("u%d", i%20),
				Phone: "79101234567", At: time.Now()}
			if err := b.Update(ctx, e.CallID, func(r *event.CallState) []event.Out { return r.ApplyEvent(e) }); err != nil {
				t.Errorf("update %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	loads := 0
	for _, m := range masters {
		loads += scriptLoads(t, m)
	}
	// One load per script per master, and a few more for commands that
	// found the script missing after a load had already ended.
	if limit := 4 * len(masters) * 2; loads > limit {
		t.Errorf("%d SCRIPT LOADs on %d masters for %d concurrent updates, want at most %d", loads, len(masters), n, limit)
	}
	t.Logf("%d SCRIPT LOADs on %d masters for %d concurrent updates", loads, len(masters), n)
}

// scriptLoads is how many SCRIPT LOADs m served since its stats were reset.
func scriptLoads(t *testing.T, m *goredis.Client) int {
	info, err := m.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_script|load:calls="); ok {
			n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			return n
		}
	}
	return 0
}
