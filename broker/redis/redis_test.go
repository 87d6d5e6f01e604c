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

// TestMain fails the package when any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
