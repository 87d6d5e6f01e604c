package event

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzWithID: any JSON object frame that starts with "type" comes out as
// valid JSON carrying the id, with every other member unchanged.
func FuzzWithID(f *testing.F) {
	f.Add(`{"type":"call","event":"INCOMING","callid":"c1"}`, "1732560000000-0")
	f.Add(`{"type":"history","callid":"a,b","link":"https://x/y?a=1,2"}`, "1-2")
	f.Add(`{"type":"seen","callid":"\u0000\"\\"}`, "18446744073709551615-18446744073709551615")
	f.Fuzz(func(t *testing.T, payload, id string) {
		if !utf8.ValidString(id) {
			return // ids are ASCII digits; JSON would replace invalid bytes
		}
		var in map[string]any
		if json.Unmarshal([]byte(payload), &in) != nil || len(in) < 2 {
			return
		}
		typ, ok := in["type"].(string)
		if !ok {
			return
		}
		// Frames are produced by Encode, which writes "type" first.
		frame := Encode(struct {
			Type string `json:"type"`
			Rest map[string]any
		}{typ, in})
		var out map[string]any
		if err := json.Unmarshal(WithID(frame, id), &out); err != nil {
			t.Fatalf("WithID(%s, %q) is not JSON: %v", frame, id, err)
		}
		if out["id"] != id || out["type"] != typ {
			t.Fatalf("id %v type %v, want %q %q", out["id"], out["type"], id, typ)
		}
	})
}

// FuzzParseID: whatever ParseID accepts prints back to a form it parses to
// the same id, and order is total.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"0-0", "1732560000000-3", "18446744073709551615-0", "01-1", "-", "1-2-3", "+1-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, ok := ParseID(s)
		if !ok {
			return
		}
		back, ok := ParseID(id.String())
		if !ok || back != id {
			t.Fatalf("%q → %v → %q → %v", s, id, id.String(), back)
		}
		if id.Less(id) {
			t.Fatal("id less than itself")
		}
	})
}
