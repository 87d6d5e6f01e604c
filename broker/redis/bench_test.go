package redis_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
)

// BenchmarkUpdate: one webhook's call update through a real redis-server
// (state machine, compare-and-set, log append, publish), each a new call.
// "serial" runs one at a time: a round trip each. "concurrent" runs 64 at
// once, as under load, so the batcher shares pipelines between them.
func BenchmarkUpdate(b *testing.B) {
	srv := redistest.Start(b)
	br := redis.New(srv.Client(), redis.Config{}, zap.NewNop())
	b.Cleanup(func() { br.Close() })
	var n atomic.Int64
	update := func() {
		id := "bench-" + strconv.FormatInt(n.Add(1), 10)
		ev := event.Event{Type: event.Incoming, CallID: id, User: "andy", Phone: "79101234567", At: time.Now()}
		if err := br.Update(context.Background(), id, func(r *event.CallState) []event.Out { return r.ApplyEvent(ev) }); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			update()
		}
	})
	b.Run("concurrent", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32) // × GOMAXPROCS goroutines
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				update()
			}
		})
	})
}
