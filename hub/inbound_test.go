package hub

import (
	"testing"
	"time"

	"github.com/callpop/callpop/event"
)

// The inbound limit and the ack slots cost no allocation per frame: they run
// for every frame a client sends.
func TestInboundBookkeepingDoesNotAllocate(t *testing.T) {
	h := &Hub{epoch: time.Now(), frameCost: 1, frameBudget: 1 << 62}
	s := &session{hub: h}
	id := event.ID{MS: uint64(time.Now().UnixMilli())}
	allocs := testing.AllocsPerRun(1000, func() {
		id.Seq++
		s.noteSent(id)
		if !s.allowFrame() || !s.takeSent(id) || s.takeSent(id) {
			t.Fatal("bookkeeping went wrong")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per frame, want 0", allocs)
	}
}
