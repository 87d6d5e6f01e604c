// Package gctune gives the garbage collector a floor of headroom. With
// GOGC=100 the heap may grow to twice the live heap before a collection; a
// node holding few sessions has a small live heap, so under a stream of
// webhooks it collected many times a second (a fifth of its CPU at 20,000
// webhooks/s). Run keeps the heap goal at least live + Headroom, which changes
// nothing for a node with a large live heap (many sessions), where GOGC=100
// already leaves more than that.
package gctune

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"go.uber.org/zap"
)

// Headroom is the least garbage a collection cycle may gather: a few
// milliseconds of webhooks at full speed, a few MB of RSS.
const Headroom = 64 << 20

// Percent is the GOGC value that lets a heap of live bytes grow by
// max(live, headroom) before the next collection.
func Percent(live, headroom uint64) int {
	if live == 0 || live >= headroom {
		return 100
	}
	return int(min(100*headroom/live, 1000))
}

// Run adjusts GOGC every interval until ctx ends, and restores what it found.
// Callers skip it when the operator set GOGC themselves. GOMEMLIMIT, when
// set, still bounds the heap: the runtime collects at the limit whatever GOGC
// says.
func Run(ctx context.Context, log *zap.Logger, interval time.Duration) {
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)
	cur := 100
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			log.Warn("no live-heap metric; GC tuning stops")
			return
		}
		p := Percent(sample[0].Value.Uint64(), Headroom)
		// Move only on a real change: every call reaches the runtime.
		if p*10 < cur*9 || p*10 > cur*11 {
			debug.SetGCPercent(p)
			cur = p
		}
	}
}
