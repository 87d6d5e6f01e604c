package event

import (
	"encoding/json"
	"testing"
)

// TestAckCarriesTheUnstyledFlag: widget.js acks a card shown without its
// styles with "unstyled":true; a plain ack encodes as before.
func TestAckCarriesTheUnstyledFlag(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]Ack{
		`{"type":"ack","id":"5-1","unstyled":true}`: {Type: "ack", ID: "5-1", Unstyled: true},
		`{"type":"ack","id":"5-1"}`:                 {Type: "ack", ID: "5-1"},
	} {
		var a Ack
		if err := json.Unmarshal([]byte(in), &a); err != nil || a != want {
			t.Errorf("%s: decoded %+v (%v), want %+v", in, a, err, want)
		}
		if out, err := json.Marshal(a); err != nil || string(out) != in {
			t.Errorf("%+v encodes as %s (%v), want %s", a, out, err, in)
		}
	}
}
