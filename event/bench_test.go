package event_test

import (
	"testing"
	"time"

	"github.com/callpop/callpop/event"
)

// BenchmarkEncodeCallFrame: a call frame is encoded once per event, then
// shared by every session of the user.
func BenchmarkEncodeCallFrame(b *testing.B) {
	now := time.Now()
	f := event.CallFrame{Type: event.FrameCall, Event: event.Incoming, CallID: "1c0e5a2e-bench", Phone: "79101234567",
		User: "andy", Direction: "in", GroupRealName: "Sales", Telnum: "74951112233",
		Contact: &event.Contact{Name: "Рога и Копыта, ООО", Responsible: "andy"}, Started: now, At: now}
	b.ReportAllocs()
	for b.Loop() {
		_ = event.Encode(f)
	}
}

// BenchmarkWithID: the log id spliced into an encoded frame on replay.
func BenchmarkWithID(b *testing.B) {
	now := time.Now()
	p := event.Encode(event.CallFrame{Type: event.FrameCall, Event: event.Incoming, CallID: "c", User: "andy", Started: now, At: now})
	b.ReportAllocs()
	for b.Loop() {
		_ = event.WithID(p, "1764100000000-12")
	}
}
