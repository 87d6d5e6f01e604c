package event

import (
	"encoding/json"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func e(typ Type, user string, sec int) Event {
	return Event{Type: typ, CallID: "c1", Phone: "79101234567", User: user, At: at(sec)}
}

// frames decodes outs into (user, event, reason) triples for comparison.
type got struct{ user, event, reason string }

func decode(t *testing.T, outs []Out) []got {
	t.Helper()
	var g []got
	for _, o := range outs {
		if o.Payload == nil {
			continue
		}
		var f struct{ Type, Event, Reason string }
		if err := json.Unmarshal(o.Payload, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type == FrameHistory {
			f.Event = "history"
		}
		g = append(g, got{o.UserKey, f.Event, f.Reason})
	}
	return g
}

func same(a, b []got) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestCallStateMachine(t *testing.T) {
	t.Parallel()
	hist := func(user string, st Status) func(*CallState) []Out {
		return func(r *CallState) []Out {
			return r.ApplyHistory(Record{CallID: "c1", User: user, Phone: "79101234567", Status: st, Start: t0}, at(100))
		}
	}
	evf := func(ev Event) func(*CallState) []Out { return func(r *CallState) []Out { return r.ApplyEvent(ev) } }
	cases := []struct {
		name  string
		steps []func(*CallState) []Out
		last  []got // frames of the last step
	}{
		{"IncomingOpensALeg", []func(*CallState) []Out{evf(e(Incoming, "andy@acme", 0))},
			[]got{{"andy", "INCOMING", ""}}},
		{"RepeatedIncomingChangesNothing", []func(*CallState) []Out{evf(e(Incoming, "andy", 0)), evf(e(Incoming, "ANDY", 1))},
			nil},
		{"AcceptedAfterIncoming", []func(*CallState) []Out{evf(e(Incoming, "andy", 0)), evf(e(Accepted, "andy", 3))},
			[]got{{"andy", "ACCEPTED", ""}}},
		{"RepeatedAcceptedChangesNothing", []func(*CallState) []Out{evf(e(Incoming, "andy", 0)), evf(e(Accepted, "andy", 3)), evf(e(Accepted, "andy", 4))},
			nil},
		{"LateIncomingDoesNotReopenClosedLeg", []func(*CallState) []Out{evf(e(Cancelled, "andy", 0)), evf(e(Incoming, "andy", 1))},
			nil},
		{"LateIncomingAfterAcceptDoesNotRing", []func(*CallState) []Out{evf(e(Accepted, "andy", 0)), evf(e(Incoming, "andy", 1))},
			nil},
		{"GroupCallAnswerClosesOtherRingingLegs", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Incoming, "mike", 0)), evf(e(Incoming, "daria", 0)), evf(e(Accepted, "mike", 5))},
			[]got{{"mike", "ACCEPTED", ""}, {"andy", "CANCELLED", ReasonAnsweredElsewhere}, {"daria", "CANCELLED", ReasonAnsweredElsewhere}}},
		{"PBXCancelAfterAnsweredElsewhereChangesNothing", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Incoming, "mike", 0)), evf(e(Accepted, "mike", 5)), evf(e(Cancelled, "andy", 6))},
			nil},
		{"GroupRaceIncomingAfterAcceptOpensNothing", []func(*CallState) []Out{
			evf(e(Incoming, "mike", 0)), evf(e(Accepted, "mike", 5)), evf(e(Incoming, "daria", 6))},
			nil},
		{"TransferToSameCallIDRingsTheNewManager", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Accepted, "andy", 2)), evf(e(Incoming, "mike", 60))},
			[]got{{"mike", "INCOMING", ""}}},
		{"AcceptByTransferTargetLeavesTalkingLegAlone", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Accepted, "andy", 2)), evf(e(Incoming, "mike", 60)), evf(e(Accepted, "mike", 62))},
			[]got{{"mike", "ACCEPTED", ""}}},
		{"TransferredClosesTheLeg", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Accepted, "andy", 2)), evf(e(Transferred, "andy", 30))},
			[]got{{"andy", "TRANSFERRED", ""}}},
		{"HistoryClosesOpenLegsAndGoesToItsUser", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Accepted, "andy", 2)), hist("andy", Success)},
			[]got{{"andy", "COMPLETED", ReasonHistory}, {"andy", "history", ""}}},
		{"HistoryOfPBXUserGoesToEveryLeg", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Incoming, "mike", 0)), hist("pbx", Missed)},
			[]got{{"andy", "CANCELLED", ReasonHistory}, {"mike", "CANCELLED", ReasonHistory}, {"andy", "history", ""}, {"mike", "history", ""}}},
		{"HistoryOfGroupLoginGoesToEveryLeg", []func(*CallState) []Out{
			evf(e(Incoming, "andy", 0)), evf(e(Cancelled, "andy", 9)), hist("g_5f3a@acme", Missed)},
			[]got{{"andy", "history", ""}}},
		{"RepeatedHistoryChangesNothing", []func(*CallState) []Out{hist("andy", Success), hist("andy", Success)},
			nil},
		{"IncomingAfterHistoryOpensNothing", []func(*CallState) []Out{hist("andy", Missed), evf(e(Incoming, "andy", 0))},
			nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var r CallState
			var outs []Out
			for _, step := range c.steps {
				outs = step(&r)
			}
			if g := decode(t, outs); !same(g, c.last) {
				t.Fatalf("last step sent %v, want %v", g, c.last)
			}
		})
	}
}

func TestFrameKeepsWhatEarlierEventsSaid(t *testing.T) {
	t.Parallel()
	var r CallState
	in := e(Incoming, "andy", 0)
	in.GroupRealName, in.Diversion, in.Contact = "Sales", "74951234567", &Contact{Name: "Horns & Hooves", Responsible: "andy"}
	r.ApplyEvent(in)
	outs := r.ApplyEvent(e(Accepted, "andy", 4))
	var f CallFrame
	if err := json.Unmarshal(outs[0].Payload, &f); err != nil {
		t.Fatal(err)
	}
	if f.GroupRealName != "Sales" || f.Diversion != "74951234567" || f.Contact == nil || f.Contact.Name != "Horns & Hooves" {
		t.Fatalf("ACCEPTED frame lost the INCOMING's fields: %+v", f)
	}
	if !f.Started.Equal(at(0)) || f.Answered == nil || !f.Answered.Equal(at(4)) {
		t.Fatalf("timers: started %v answered %v", f.Started, f.Answered)
	}
}

func TestDirectionIsInferredWhenMissing(t *testing.T) {
	t.Parallel()
	var r CallState
	r.ApplyEvent(Event{Type: Outgoing, CallID: "c1", Phone: "1", User: "andy", At: at(0)})
	outs := r.ApplyEvent(Event{Type: Accepted, CallID: "c1", Phone: "1", User: "andy", At: at(1)})
	var f CallFrame
	_ = json.Unmarshal(outs[0].Payload, &f)
	if f.Direction != DirOut {
		t.Fatalf("ACCEPTED of an outgoing call without direction: %q, want out", f.Direction)
	}
	var r2 CallState
	outs = r2.ApplyEvent(Event{Type: Incoming, CallID: "c2", Phone: "1", User: "andy", At: at(0)})
	_ = json.Unmarshal(outs[0].Payload, &f)
	if f.Direction != DirIn {
		t.Fatalf("INCOMING without direction: %q, want in", f.Direction)
	}
}

func TestRatingBeforeOrAfterRecordIsAttached(t *testing.T) {
	t.Parallel()
	var r CallState
	if outs := r.ApplyRating("4"); len(outs) != 0 {
		t.Fatalf("rating before the record sent %d outs", len(outs))
	}
	outs := r.ApplyHistory(Record{CallID: "c1", User: "andy", Status: Success}, t0)
	if outs[0].Record == nil || outs[0].Record.Rating != "4" {
		t.Fatalf("record without the earlier rating: %+v", outs)
	}
	outs = r.ApplyRating("5")
	if len(outs) != 1 || outs[0].Record.Rating != "5" || outs[0].Payload != nil {
		t.Fatalf("rating after the record: %+v", outs)
	}
}

func TestUserKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"andy": "andy", "Andy@Acme": "andy", " andy ": "andy", "g_1f@acme": "g_1f", "@x": ""} {
		if got := UserKey(in); got != want {
			t.Errorf("UserKey(%q) = %q, want %q", in, got, want)
		}
	}
	for key, want := range map[string]bool{"andy": true, "pbx": false, "g_1f": false, "": false} {
		if IsPerson(key) != want {
			t.Errorf("IsPerson(%q) = %v", key, !want)
		}
	}
}

func TestWithIDAndParseID(t *testing.T) {
	t.Parallel()
	got := string(WithID([]byte(`{"type":"call","event":"INCOMING"}`), "17-2"))
	if got != `{"type":"call","id":"17-2","event":"INCOMING"}` {
		t.Fatalf("WithID: %s", got)
	}
	id, ok := ParseID("1732560000000-3")
	if !ok || id != (ID{1732560000000, 3}) || id.String() != "1732560000000-3" {
		t.Fatalf("ParseID: %v %v", id, ok)
	}
	for _, bad := range []string{"", "1", "a-1", "1-", "-1", "1-2-3"} {
		if _, ok := ParseID(bad); ok {
			t.Errorf("ParseID(%q) ok", bad)
		}
	}
	if !(ID{1, 5}).Less(ID{2, 0}) || !(ID{2, 0}).Less(ID{2, 1}) || (ID{2, 1}).Less(ID{2, 1}) {
		t.Fatal("Less")
	}
	if n := (ID{5, 0}).Next(5); n != (ID{5, 1}) {
		t.Fatalf("Next same ms: %v", n)
	}
	if n := (ID{5, 3}).Next(9); n != (ID{9, 0}) {
		t.Fatalf("Next later ms: %v", n)
	}
}

func TestMarkSeenIsPerUserAndOnce(t *testing.T) {
	t.Parallel()
	var r CallState
	r.ApplyEvent(e(Incoming, "andy", 0))
	r.ApplyEvent(e(Incoming, "mike", 0))
	r.ApplyHistory(Record{CallID: "c1", User: "pbx", Direction: DirIn, Status: Missed}, at(30))
	if !r.MarkSeen("andy") {
		t.Fatal("first mark is no news")
	}
	if r.MarkSeen("andy") {
		t.Fatal("marking twice is news")
	}
	outs := r.ApplyRating("2")
	for _, o := range outs {
		if o.Record.Seen != (o.UserKey == "andy") {
			t.Fatalf("rating update lost who saw it: %+v", o.Record)
		}
	}
}

func TestAnsweredElsewhereCarriesTheAcceptingUsersName(t *testing.T) {
	var r CallState
	r.ApplyEvent(e(Incoming, "andy", 0))
	r.ApplyEvent(e(Incoming, "mike", 0))
	acc := e(Accepted, "mike@acme", 2)
	acc.UserName = "Mike Brown"
	outs := r.ApplyEvent(acc)
	var andy CallFrame
	for _, o := range outs {
		if o.UserKey == "andy" {
			if err := json.Unmarshal(o.Payload, &andy); err != nil {
				t.Fatal(err)
			}
		}
	}
	if andy.Reason != ReasonAnsweredElsewhere || andy.AnsweredBy != "mike" || andy.AnsweredByName != "Mike Brown" {
		t.Fatalf("andy's frame: reason %q answered_by %q answered_by_name %q", andy.Reason, andy.AnsweredBy, andy.AnsweredByName)
	}
	// The closing frame history sends later does not repeat who answered.
	outs = r.ApplyHistory(Record{CallID: "c1", User: "mike", Phone: "79101234567", Direction: DirIn, Status: Success}, at(60))
	for _, o := range outs {
		if o.Record == nil && o.Payload != nil {
			var f CallFrame
			_ = json.Unmarshal(o.Payload, &f)
			if f.AnsweredByName != "" {
				t.Fatalf("history close of %s kept answered_by_name %q", o.UserKey, f.AnsweredByName)
			}
		}
	}
}
