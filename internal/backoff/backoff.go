// Package backoff is callpop's one retry schedule: exponential, capped, and
// jittered, so that nodes, records and clients that failed together do not
// retry together. (The widget's own schedule, in widget.js, follows the same
// shape with full jitter: many browsers reconnecting at once need spreading
// over the whole window.)
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential schedule: the n-th retry (0 = the first) waits
// Base·2ⁿ, capped at Max, of which a random part up to half is dropped
// ("equal jitter": never less than half the step, so a schedule still backs
// off). The zero Max means Base is never exceeded.
type Policy struct {
	Base, Max time.Duration
}

// Delay is the pause before retry n (0-based).
func (p Policy) Delay(n int) time.Duration {
	d := p.Base
	hi := max(p.Max, p.Base)
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if d <= 0 {
		return 0
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Sleep pauses for d, or until ctx ends; it reports whether the whole pause
// elapsed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
