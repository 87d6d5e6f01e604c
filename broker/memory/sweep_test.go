package memory

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/callpop/callpop/event"
)

// Records expire RecordTTL after their last change, changed ones later
// than untouched ones, and each update costs the sweep O(1).
func TestExpiredRecordsAreDropped(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	now := t0
	b := New(Config{RecordTTL: time.Minute, Now: func() time.Time { return now }})
	touch := func(at time.Duration, callID string) {
		t.Helper()
		now = t0.Add(at)
		if err := b.Update(context.Background(), callID, func(r *event.CallState) []event.Out {
			r.Rating = at.String() // a change, no frames
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	held := func() []string {
		b.s.mu.Lock()
		defer b.s.mu.Unlock()
		return slices.Sorted(maps.Keys(b.s.calls))
	}
	touch(0, "a")
	touch(30*time.Second, "b")
	touch(45*time.Second, "a") // a now expires at 1m45s
	touch(61*time.Second, "c")
	if got := held(); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("at 1m01s: %v, want a (changed at 45s), b, c", got)
	}
	touch(95*time.Second, "c") // b expired at 1m30s
	if got := held(); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("at 1m35s: %v, want a, c", got)
	}
	touch(200*time.Second, "d")
	if got := held(); !slices.Equal(got, []string{"d"}) {
		t.Fatalf("at 3m20s: %v, want d", got)
	}
}
