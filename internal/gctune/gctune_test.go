package gctune

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestPercentKeepsAFloorOfHeadroom(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live uint64
		want int
	}{
		{0, 100},            // nothing measured yet
		{16 * mb, 400},      // a small heap grows by the headroom, not by itself
		{32 * mb, 200},      //
		{64 * mb, 100},      // from here GOGC=100 leaves more than the headroom
		{512 * mb, 100},     //
		{1 * mb / 16, 1000}, // capped: a near-empty heap does not wait for ever
	} {
		if got := Percent(c.live, 64*mb); got != c.want {
			t.Errorf("Percent(%d MB) = %d, want %d", c.live/mb, got, c.want)
		}
	}
}

// Run raises GOGC on this test binary's small heap and restores it after.
func TestRunRaisesGOGCForASmallHeapAndRestoresIt(t *testing.T) {
	before := debug.SetGCPercent(77)
	defer debug.SetGCPercent(before)
	runtime.GC() // a live-heap figure to start from
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Run(ctx, zap.NewNop(), time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p := gogc()
		if p > 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d with a heap this small", p)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if p := gogc(); p != 77 {
		t.Fatalf("GOGC %d after Run, want the 77 it found", p)
	}
}

// gogc reads the runtime's GOGC without changing it.
func gogc() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(s[0].Value.Uint64())
}
