package backoff_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/callpop/callpop/internal/backoff"
)

func TestDelayDoublesFromBaseUpToMaxWithinHalfAndWhole(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Base: 100 * time.Millisecond, Max: time.Second}
	for n, step := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		step *= time.Millisecond
		if n == 6 {
			n = 1000 // far beyond: no overflow, still the cap
		}
		for range 200 {
			if d := p.Delay(n); d < step/2 || d > step {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", n, d, step/2, step)
			}
		}
	}
	if d := (backoff.Policy{Base: 5 * time.Second}).Delay(3); d < 2500*time.Millisecond || d > 5*time.Second {
		t.Errorf("zero Max: Delay(3) = %v, want within Base's [half, whole]", d)
	}
	if d := (backoff.Policy{}).Delay(3); d != 0 {
		t.Errorf("zero policy: Delay = %v, want 0", d)
	}
}

func TestDelaySpreadsRetries(t *testing.T) {
	t.Parallel()
	p := backoff.Policy{Base: time.Second, Max: time.Second}
	seen := map[time.Duration]bool{}
	for range 50 {
		seen[p.Delay(0)] = true
	}
	if len(seen) < 10 {
		t.Errorf("50 delays took %d values: not jittered", len(seen))
	}
}

func TestSleepEndsWithItsContext(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		if !backoff.Sleep(context.Background(), time.Hour) {
			t.Error("Sleep without cancellation reported an early end")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		if backoff.Sleep(ctx, time.Hour) {
			t.Error("Sleep past its context's end reported the whole pause")
		}
		if got := time.Since(start); got != time.Minute {
			t.Errorf("Sleep ended after %v, want the context's minute", got)
		}
	})
}
