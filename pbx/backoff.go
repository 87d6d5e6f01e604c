package pbx

import (
	"context"
	"math/rand/v2"
	"time"
)

// backoff is the pause before retry n (0-based): base·2ⁿ capped at
// MaxBackoff, of which a random half is dropped ("equal jitter"), so that
// clients that failed together do not retry together.
func backoff(base time.Duration, n int) time.Duration {
	d := base
	for i := 0; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	half := d / 2
	return half + rand.N(half+1)
}

// sleep pauses for d, or until ctx ends; it reports whether the whole pause
// elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
