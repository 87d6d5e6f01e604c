package hub

import "testing"

// TestTransitionTable lists every (state, event) pair: what next does with
// it, and whether the event applies.
func TestTransitionTable(t *testing.T) {
	t.Parallel()
	type row struct {
		from state
		ev   change
		to   state
		ok   bool
	}
	table := []row{
		{helloing, evHelloWritten, live, true},
		{helloing, evClose, closing, true},
		{helloing, evWriteFailed, closing, true},
		{helloing, evEnded, closed, true},

		{live, evHelloWritten, live, false},
		{live, evClose, closing, true},
		{live, evWriteFailed, closing, true},
		{live, evEnded, closed, true},

		{closing, evHelloWritten, closing, false}, // a hello that finished after a close starts nothing
		{closing, evClose, closing, false},        // closed once, counted once
		{closing, evWriteFailed, closing, false},
		{closing, evEnded, closed, true},

		{closed, evHelloWritten, closed, false},
		{closed, evClose, closed, false},
		{closed, evWriteFailed, closed, false},
		{closed, evEnded, closed, false}, // removed from the hub once
	}
	if want := len(stateNames) * len(eventNames); len(table) != want {
		t.Fatalf("the table has %d rows, want every pair: %d", len(table), want)
	}
	seen := map[[2]uint8]bool{}
	for _, r := range table {
		seen[[2]uint8{uint8(r.from), uint8(r.ev)}] = true
		to, ok := next(r.from, r.ev)
		if to != r.to || ok != r.ok {
			t.Errorf("next(%v, %v) = %v, %v; want %v, %v", r.from, r.ev, to, ok, r.to, r.ok)
		}
	}
	if len(seen) != len(table) {
		t.Fatalf("the table repeats a pair")
	}
}
