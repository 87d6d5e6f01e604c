package redis

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/callpop/callpop/event"
)

// TestUpdateGivenUpInTheQueueIsNeverApplied: Update honours its context — a
// webhook whose time ran out while its call's previous batch committed
// returns at once, and its change is not applied behind its back.
func TestUpdateGivenUpInTheQueueIsNeverApplied(t *testing.T) {
	t.Parallel()
	var c combiner
	entered, release := make(chan struct{}), make(chan struct{})
	var applied atomic.Int32
	apply := func(_ string, batch []*update) error {
		for _, u := range batch {
			u.fn(&event.CallState{})
		}
		if applied.Load() == 0 {
			close(entered)
			<-release // the first batch commits slowly
		}
		applied.Add(int32(len(batch)))
		return nil
	}
	first := make(chan error, 1)
	go func() {
		first <- c.do(context.Background(), "c1", func(*event.CallState) []event.Out { return nil }, apply)
	}()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	var ran atomic.Bool
	queued := make(chan error, 1)
	go func() {
		queued <- c.do(ctx, "c1", func(*event.CallState) []event.Out { ran.Store(true); return nil }, apply)
	}()
	for { // wait until it is queued behind the first batch
		c.mu.Lock()
		n := len(*c.calls["c1"])
		c.mu.Unlock()
		if n == 1 {
			break
		}
		runtime.Gosched()
	}
	cancel()
	if err := <-queued; !errors.Is(err, context.Canceled) || !errors.Is(err, event.ErrUnavailable) {
		t.Fatalf("queued Update after its context ended = %v, want ErrUnavailable and Canceled", err)
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	// The call is free again only after the queue was looked at.
	if err := c.do(context.Background(), "c1", func(*event.CallState) []event.Out { return nil }, apply); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Error("the update whose caller gave up was applied")
	}
	if n := applied.Load(); n != 2 {
		t.Errorf("%d updates applied, want 2 (the first and the last)", n)
	}
	if err := (&combiner{}).do(ctx, "c2", nil, apply); !errors.Is(err, context.Canceled) {
		t.Errorf("Update with an ended context = %v, want Canceled before anything runs", err)
	}
}
