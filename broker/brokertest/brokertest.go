// Package brokertest is the test suite every event.Broker passes: the
// embedded one and Redis run the same cases, two nodes at a time.
package brokertest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/tenant"
)

// Options are what a case needs of the brokers it gets.
type Options struct {
	LogSize int              // 0: the broker's default
	Now     func() time.Time // nil: time.Now
}

// Factory returns two nodes sharing one backend, closed at test end. Both
// must implement Inspector.
type Factory func(t *testing.T, o Options) (a, b event.Broker)

// Inspector looks at what a broker's backend stores, for the cases that
// prove a client cannot make it store more. Brokers offer it in their tests
// only (an export_test.go).
type Inspector interface {
	// StoredNaming counts the stored keys (Redis) or entries (memory) whose
	// name holds s: a call's record, a user's log or recent calls.
	StoredNaming(t *testing.T, s string) int
}

func storedNaming(t *testing.T, b event.Broker, s string) int {
	t.Helper()
	in, ok := b.(Inspector)
	if !ok {
		t.Fatalf("%T does not implement brokertest.Inspector", b)
	}
	return in.StoredNaming(t, s)
}

// Run runs the suite.
func Run(t *testing.T, newBrokers Factory) {
	cases := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"EventOnOneNodeReachesSubscriberOnOther", testCrossNode},
		{"OnlySubscribedUsersAreDelivered", testOnlySubscribed},
		{"UnsubscribeStopsDelivery", testUnsubscribe},
		{"SnapshotListsOpenCallsOnly", testSnapshotActive},
		{"ResumeReturnsEveryMissedEventInOrder", testResume},
		{"ResumeFromTrimmedLogIsNotRecovered", testTrimmed},
		{"GroupCallRaceLeavesOneTalker", testGroupRace},
		{"ConcurrentUpdatesOnTwoNodesAllApply", testConcurrentUpdates},
		{"RecentCallsNewestFirstAndRated", testRecentCalls},
		{"StaleRingingCallIsNotActive", testStale},
		{"RatingBeforeRecordIsKept", testEarlyRating},
		{"TicketIsTakenOnceOnAnyNodeAndExpires", testTickets},
		{"MarkSeenOfUnknownCallsStoresNothing", testMarkSeenUnknown},
		{"MarkSeenCannotReachAnotherUsersCall", testMarkSeenOtherUser},
		{"MarkSeenCountsOnlyWhatChangedAndSendsOneFrameEach", testMarkSeenCounts},
		{"TenantsWithOneCallIDAndLoginNeverMeet", testTenantsApart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newBrokers)
		})
	}
}

// Recorder collects the messages a node's handler receives.
type Recorder struct {
	mu   sync.Mutex
	msgs []event.Message
	ch   chan struct{}
}

// NewRecorder registers a recorder as b's handler.
func NewRecorder(b event.Broker) *Recorder {
	r := &Recorder{ch: make(chan struct{}, 1)}
	b.Register(func(m event.Message) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
		select {
		case r.ch <- struct{}{}:
		default:
		}
	})
	return r
}

// WaitFor waits until n messages arrived and returns them.
func (r *Recorder) WaitFor(t *testing.T, n int) []event.Message {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]event.Message(nil), r.msgs...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-r.ch:
		case <-deadline:
			t.Fatalf("got %d messages, want %d: %s", len(got), n, dump(got))
		}
	}
}

func dump(ms []event.Message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "\n  %s %s %s", m.UserKey, m.ID, m.Data)
	}
	return b.String()
}

var seq atomic.Int64

// callID returns a call id unique across tests sharing one Redis.
func callID(t *testing.T) string {
	return fmt.Sprintf("%s-%d", strings.ReplaceAll(t.Name(), "/", "-"), seq.Add(1))
}

func user(t *testing.T, name string) string {
	return fmt.Sprintf("%s%d", name, seq.Add(1))
}

func ev(typ event.Type, callID, user string, at time.Time) event.Event {
	return event.Event{Type: typ, CallID: callID, User: user, Phone: "79101234567", At: at}
}

func apply(t *testing.T, b event.Broker, e event.Event) {
	t.Helper()
	if err := b.Update(context.Background(), e.CallID, func(r *event.CallState) []event.Out { return r.ApplyEvent(e) }); err != nil {
		t.Fatalf("update: %v", err)
	}
}

func subscribe(t *testing.T, b event.Broker, user string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Subscribe(ctx, user); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
}

func snapshot(t *testing.T, b event.Broker, user string, since event.ID) event.Snapshot {
	t.Helper()
	s, err := b.Snapshot(context.Background(), user, since)
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return s
}

func frameOf(t *testing.T, m event.Message) event.CallFrame {
	t.Helper()
	var f event.CallFrame
	if err := json.Unmarshal(m.Data, &f); err != nil {
		t.Fatalf("frame %s: %v", m.Data, err)
	}
	if f.ID != m.ID.String() {
		t.Fatalf("frame id %q, message id %q", f.ID, m.ID)
	}
	return f
}

func testCrossNode(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	recB := NewRecorder(b)
	NewRecorder(a)
	andy := user(t, "andy")
	subscribe(t, b, andy)
	id := callID(t)
	apply(t, a, ev(event.Incoming, id, andy+"@acme", time.Now()))
	got := recB.WaitFor(t, 1)
	f := frameOf(t, got[0])
	if got[0].UserKey != andy || f.Event != event.Incoming || f.CallID != id || f.User != andy || f.Direction != "in" {
		t.Fatalf("got %+v", f)
	}
}

func testOnlySubscribed(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	rec := NewRecorder(b)
	NewRecorder(a)
	andy, mike := user(t, "andy"), user(t, "mike")
	subscribe(t, b, mike)
	apply(t, a, ev(event.Incoming, callID(t), andy, time.Now()))
	apply(t, a, ev(event.Incoming, callID(t), mike, time.Now()))
	got := rec.WaitFor(t, 1)
	time.Sleep(50 * time.Millisecond) // room for a wrong extra delivery to show
	got = rec.WaitFor(t, 1)
	if len(got) != 1 || got[0].UserKey != mike {
		t.Fatalf("want only mike's frame: %s", dump(got))
	}
}

func testUnsubscribe(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	rec := NewRecorder(b)
	NewRecorder(a)
	andy, mike := user(t, "andy"), user(t, "mike")
	subscribe(t, b, andy)
	subscribe(t, b, andy) // counted: one Unsubscribe leaves one
	subscribe(t, b, mike)
	apply(t, a, ev(event.Incoming, callID(t), andy, time.Now()))
	rec.WaitFor(t, 1)
	if err := b.Unsubscribe(context.Background(), andy); err != nil {
		t.Fatal(err)
	}
	apply(t, a, ev(event.Incoming, callID(t), andy, time.Now()))
	rec.WaitFor(t, 2) // still subscribed once
	if err := b.Unsubscribe(context.Background(), andy); err != nil {
		t.Fatal(err)
	}
	apply(t, a, ev(event.Incoming, callID(t), andy, time.Now()))
	apply(t, a, ev(event.Incoming, callID(t), mike, time.Now()))
	got := rec.WaitFor(t, 3)
	if got[2].UserKey != mike || len(got) != 3 {
		t.Fatalf("andy's frame after the last Unsubscribe: %s", dump(got))
	}
}

func testSnapshotActive(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	andy := user(t, "andy")
	c1, c2 := callID(t), callID(t)
	now := time.Now()
	apply(t, a, ev(event.Incoming, c1, andy, now))
	apply(t, a, ev(event.Outgoing, c2, andy, now.Add(time.Second)))
	s := snapshot(t, b, andy, event.ID{})
	if len(s.Active) != 2 || s.Active[0].CallID != c1 || s.Active[1].CallID != c2 || s.Active[1].Direction != "out" {
		t.Fatalf("active %+v", s.Active)
	}
	apply(t, a, ev(event.Accepted, c1, andy, now.Add(2*time.Second)))
	s = snapshot(t, b, andy, event.ID{})
	if len(s.Active) != 2 || s.Active[0].Event != event.Accepted || s.Active[0].Answered == nil {
		t.Fatalf("after ACCEPTED: %+v", s.Active)
	}
	apply(t, b, ev(event.Completed, c1, andy, now.Add(3*time.Second)))
	apply(t, b, ev(event.Cancelled, c2, andy, now.Add(3*time.Second)))
	s = snapshot(t, a, andy, event.ID{})
	if len(s.Active) != 0 || s.Last.IsZero() {
		t.Fatalf("after the ends: %+v last %v", s.Active, s.Last)
	}
}

func testResume(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	andy := user(t, "andy")
	id := callID(t)
	now := time.Now()
	var ids []event.ID
	for i, typ := range []event.Type{event.Incoming, event.Accepted, event.Completed} {
		apply(t, a, ev(typ, id, andy, now.Add(time.Duration(i)*time.Second)))
		ids = append(ids, snapshot(t, b, andy, event.ID{}).Last)
	}
	for i := 1; i < len(ids); i++ {
		if !ids[i-1].Less(ids[i]) {
			t.Fatalf("ids not increasing: %v", ids)
		}
	}
	s := snapshot(t, b, andy, ids[0])
	if !s.Recovered || len(s.Missed) != 2 || s.Missed[0].ID != ids[1] || s.Missed[1].ID != ids[2] {
		t.Fatalf("resume from first: recovered=%v %s", s.Recovered, dump(s.Missed))
	}
	if f := frameOf(t, s.Missed[1]); f.Event != event.Completed {
		t.Fatalf("last missed %+v", f)
	}
	s = snapshot(t, b, andy, ids[2])
	if !s.Recovered || len(s.Missed) != 0 {
		t.Fatalf("resume from newest: %+v", s)
	}
	s = snapshot(t, b, andy, event.ID{MS: 1, Seq: 0})
	if s.Recovered || len(s.Missed) != 0 {
		t.Fatalf("resume from an id never issued must not claim recovery: %+v", s)
	}
}

func testTrimmed(t *testing.T, nb Factory) {
	a, b := nb(t, Options{LogSize: 5})
	andy := user(t, "andy")
	now := time.Now()
	apply(t, a, ev(event.Incoming, callID(t), andy, now))
	first := snapshot(t, b, andy, event.ID{}).Last
	// Redis trims streams approximately (whole nodes of 100 entries), so
	// write well past that.
	for i := 0; i < 300; i++ {
		apply(t, a, ev(event.Incoming, callID(t), andy, now))
	}
	s := snapshot(t, b, andy, first)
	if s.Recovered {
		t.Fatalf("recovered from an id trimmed away (%d missed)", len(s.Missed))
	}
}

func testGroupRace(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	id := callID(t)
	now := time.Now()
	var users []string
	for i := 0; i < 8; i++ {
		users = append(users, user(t, "m"))
		apply(t, a, ev(event.Incoming, id, users[i], now))
	}
	// Everyone's phone is picked up "at once", half the webhooks on each node.
	atOnce(len(users), a, b, func(i int, node event.Broker) {
		apply(t, node, ev(event.Accepted, id, users[i], now.Add(time.Second)))
	})
	talking := 0
	for _, u := range users {
		s := snapshot(t, a, u, event.ID{})
		switch len(s.Active) {
		case 0:
		case 1:
			if s.Active[0].Event != event.Accepted {
				t.Fatalf("%s active as %s", u, s.Active[0].Event)
			}
			talking++
		default:
			t.Fatalf("%s has %d active", u, len(s.Active))
		}
	}
	if talking != 1 {
		t.Fatalf("%d managers talking on one call, want 1", talking)
	}
}

func testRecentCalls(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	andy := user(t, "andy")
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 3; i++ {
		id := callID(t)
		ids = append(ids, id)
		rec := event.Record{CallID: id, User: andy, Phone: "79101234567", Direction: "in", Status: event.Success,
			Start: base.Add(time.Duration(i) * time.Minute), Duration: 10 * i}
		for range 2 { // a repeated webhook changes nothing
			if err := a.Update(context.Background(), id, func(r *event.CallState) []event.Out { return r.ApplyHistory(rec, time.Now()) }); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Update(context.Background(), ids[1], func(r *event.CallState) []event.Out { return r.ApplyRating("5") }); err != nil {
		t.Fatal(err)
	}
	got, err := b.RecentCalls(context.Background(), andy, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].CallID != ids[2] || got[1].CallID != ids[1] || got[2].CallID != ids[0] {
		t.Fatalf("recent calls %+v", got)
	}
	if got[1].Rating != "5" || got[0].Rating != "" {
		t.Fatalf("rating not attached: %+v", got)
	}
	if !got[0].Start.Equal(base.Add(2 * time.Minute)) {
		t.Fatalf("start %v", got[0].Start)
	}
	got, _ = a.RecentCalls(context.Background(), andy, 2)
	if len(got) != 2 {
		t.Fatalf("limit 2: %d", len(got))
	}
}

func testStale(t *testing.T, nb Factory) {
	var now atomic.Pointer[time.Time]
	t0 := time.Now()
	now.Store(&t0)
	a, b := nb(t, Options{Now: func() time.Time { return *now.Load() }})
	andy := user(t, "andy")
	apply(t, a, ev(event.Incoming, callID(t), andy, t0))
	if s := snapshot(t, b, andy, event.ID{}); len(s.Active) != 1 {
		t.Fatalf("active %+v", s.Active)
	}
	later := t0.Add(event.RingingTTL + time.Minute)
	now.Store(&later)
	if s := snapshot(t, b, andy, event.ID{}); len(s.Active) != 0 {
		t.Fatalf("a call ringing for %v with no news is still active", event.RingingTTL)
	}
}

func testEarlyRating(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	andy := user(t, "andy")
	id := callID(t)
	// The rating sends nothing, but the record must keep it for the history.
	if err := a.Update(context.Background(), id, func(r *event.CallState) []event.Out { return r.ApplyRating("5") }); err != nil {
		t.Fatal(err)
	}
	rec := event.Record{CallID: id, User: andy, Phone: "79101234567", Direction: "in", Status: event.Success, Start: time.Now()}
	if err := b.Update(context.Background(), id, func(r *event.CallState) []event.Out { return r.ApplyHistory(rec, time.Now()) }); err != nil {
		t.Fatal(err)
	}
	got, err := a.RecentCalls(context.Background(), andy, 1)
	if err != nil || len(got) != 1 || got[0].Rating != "5" {
		t.Fatalf("recent calls %+v %v, want the early rating attached", got, err)
	}
}

// testConcurrentUpdates: many updates of one call at once, from both nodes,
// each seeing the record as the others left it: none is lost, whatever a
// node remembers of the record or batches together.
func testConcurrentUpdates(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	id := callID(t)
	const each = 20
	atOnce(2*each, a, b, func(i int, node event.Broker) {
		name := fmt.Sprintf("u%d", i)
		if err := node.Update(context.Background(), id, func(r *event.CallState) []event.Out {
			if !slices.Contains(r.SeenBy, name) {
				r.SeenBy = append(r.SeenBy, name)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	})
	for _, node := range []event.Broker{a, b} {
		var seen []string
		if err := node.Update(context.Background(), id, func(r *event.CallState) []event.Out {
			seen = slices.Clone(r.SeenBy)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(seen) != 2*each {
			t.Fatalf("%d updates in the record, want %d: %v", len(seen), 2*each, seen)
		}
	}
}

// history delivers a call's history record to user.
func history(t *testing.T, b event.Broker, id, user string, dir string, st event.Status, start time.Time) {
	t.Helper()
	rec := event.Record{CallID: id, User: user, Phone: "79101234567", Direction: dir, Status: st, Start: start}
	if err := b.Update(context.Background(), id, func(r *event.CallState) []event.Out { return r.ApplyHistory(rec, time.Now()) }); err != nil {
		t.Fatalf("history: %v", err)
	}
}

func markSeen(t *testing.T, b event.Broker, user string, ids ...string) int {
	t.Helper()
	n, err := b.MarkSeen(context.Background(), user, ids)
	if err != nil {
		t.Fatalf("mark seen: %v", err)
	}
	return n
}

// seen reports, by callid, whether user's recent calls hold it as seen.
func seen(t *testing.T, b event.Broker, user string) map[string]bool {
	t.Helper()
	recs, err := b.RecentCalls(context.Background(), user, event.DefaultRecentCalls)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, r := range recs {
		m[r.CallID] = r.Seen
	}
	return m
}

// testMarkSeenUnknown: ids that are in no one's recent calls, or in another
// user's, change nothing and store nothing, for a user with calls and for
// one without.
func testMarkSeenUnknown(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	andy, eve := user(t, "andy"), user(t, "eve")
	mine := callID(t)
	history(t, a, mine, andy, event.DirIn, event.Missed, time.Now())
	before := storedNaming(t, a, andy)
	if before == 0 {
		t.Fatalf("nothing stored for %s after a history record: the inspector sees nothing", andy)
	}
	var unknown []string
	for range 40 {
		unknown = append(unknown, callID(t))
	}
	if n := markSeen(t, a, andy, unknown...); n != 0 {
		t.Fatalf("marked %d unknown calls", n)
	}
	if n := markSeen(t, b, eve, append(unknown, mine)...); n != 0 {
		t.Fatalf("a user without calls marked %d", n)
	}
	for _, id := range unknown {
		if n := storedNaming(t, b, id); n != 0 {
			t.Fatalf("marking unknown call %s seen stored %d keys for it", id, n)
		}
	}
	if n := storedNaming(t, b, eve); n != 0 {
		t.Fatalf("marking seen stored %d keys for a user without calls", n)
	}
	if after := storedNaming(t, b, andy); after != before {
		t.Fatalf("keys of %s: %d before, %d after marking unknown calls", andy, before, after)
	}
	if seen(t, b, andy)[mine] {
		t.Fatal("another user's mark reached the call")
	}
}

// testMarkSeenOtherUser: a call in someone else's recent calls cannot be
// marked, even one both had a leg of; each marks only their own copy.
func testMarkSeenOtherUser(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	andy, mike := user(t, "andy"), user(t, "mike")
	now := time.Now()
	andys := callID(t)
	history(t, a, andys, andy, event.DirIn, event.Missed, now)
	last := snapshot(t, a, andy, event.ID{}).Last
	if n := markSeen(t, b, mike, andys); n != 0 || seen(t, a, andy)[andys] {
		t.Fatalf("mike marked andy's call: marked %d", n)
	}
	if s := snapshot(t, a, andy, event.ID{}); s.Last != last {
		t.Fatal("mike's mark sent andy a frame")
	}
	// A group call nobody took: the record goes to everyone who rang.
	group := callID(t)
	apply(t, a, ev(event.Incoming, group, andy, now))
	apply(t, a, ev(event.Incoming, group, mike, now))
	history(t, a, group, "pbx", event.DirIn, event.Missed, now.Add(time.Second))
	if n := markSeen(t, b, mike, group); n != 1 {
		t.Fatalf("mike marking his group call: marked %d, want 1", n)
	}
	if !seen(t, a, mike)[group] || seen(t, a, andy)[group] {
		t.Fatalf("after mike's mark: mike %v, andy %v", seen(t, a, mike), seen(t, a, andy))
	}
}

// testMarkSeenCounts: only missed, unseen calls of the user change, each
// once, with one "seen" frame each; the mark outlives a later change of
// the call (a rating) on either node.
func testMarkSeenCounts(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	recB := NewRecorder(b)
	NewRecorder(a)
	andy := user(t, "andy")
	now := time.Now()
	m1, m2, ok := callID(t), callID(t), callID(t)
	history(t, a, m1, andy, event.DirIn, event.Missed, now)
	history(t, a, m2, andy, event.DirIn, event.Missed, now.Add(time.Second))
	history(t, a, ok, andy, event.DirIn, event.Success, now.Add(2*time.Second))
	subscribe(t, b, andy)
	if n := markSeen(t, a, andy, m1, m1, ok, callID(t)); n != 1 {
		t.Fatalf("marked %d, want 1 (m1 once; the answered call and the unknown one are no change)", n)
	}
	if n := markSeen(t, b, andy, m1, m2); n != 1 {
		t.Fatalf("marked %d, want 1 (m1 was already seen)", n)
	}
	if n := markSeen(t, a, andy, m1, m2); n != 0 {
		t.Fatalf("marking twice: marked %d", n)
	}
	// A user's frames arrive in log order: a wrong extra seen frame would
	// show before this one.
	sentinel := callID(t)
	apply(t, a, ev(event.Incoming, sentinel, andy, now))
	got := recB.WaitFor(t, 3)
	if len(got) != 3 || frameOf(t, got[2]).CallID != sentinel {
		t.Fatalf("want one seen frame per change, then the sentinel: %s", dump(got))
	}
	for i, want := range []string{m1, m2} {
		var f event.SeenFrame
		if err := json.Unmarshal(got[i].Data, &f); err != nil || f.Type != event.FrameSeen || f.CallID != want || f.ID != got[i].ID.String() {
			t.Fatalf("frame %d: %s (%v), want seen %s", i, got[i].Data, err, want)
		}
	}
	if s := seen(t, b, andy); !s[m1] || !s[m2] || s[ok] {
		t.Fatalf("seen %v", s)
	}
	// A rating rewrites the user's copy from the call's record: the mark
	// must be in both. Node a last wrote m1's record before the mark.
	for i, node := range []event.Broker{a, b} {
		rating := fmt.Sprint(4 + i)
		if err := node.Update(context.Background(), m1, func(r *event.CallState) []event.Out { return r.ApplyRating(rating) }); err != nil {
			t.Fatal(err)
		}
		recs, _ := b.RecentCalls(context.Background(), andy, event.DefaultRecentCalls)
		if i := slices.IndexFunc(recs, func(r event.Record) bool { return r.CallID == m1 }); i < 0 || recs[i].Rating != rating || !recs[i].Seen {
			t.Fatalf("after rating %s: %+v, want it rated and still seen", rating, recs)
		}
	}
}

// atOnce runs f(i, node) for i < n all at once, on a for even i and b for odd,
// and waits for them.
func atOnce(n int, a, b event.Broker, f func(i int, node event.Broker)) {
	var wg sync.WaitGroup
	for i := range n {
		node := a
		if i%2 == 1 {
			node = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(i, node)
		}()
	}
	wg.Wait()
}

// inTenant applies fn to tid's call id as the webhook does for a tenant:
// under the scoped id, with the call's Scope set.
func inTenant(t *testing.T, b event.Broker, tid, id string, fn event.UpdateFunc) {
	t.Helper()
	if err := b.Update(context.Background(), tenant.Key(tid, id), func(r *event.CallState) []event.Out {
		r.Scope = tenant.Key(tid, "")
		return fn(r)
	}); err != nil {
		t.Fatalf("update in %q: %v", tid, err)
	}
}

// testTenantsApart: the default tenant and a tenant share a callid and a
// login; each one's frames, active calls, recent calls and seen marks stay
// its own, on both nodes.
func testTenantsApart(t *testing.T, nb Factory) {
	a, b := nb(t, Options{})
	rec := NewRecorder(b)
	NewRecorder(a)
	tid := fmt.Sprintf("t%d.example", seq.Add(1))
	andy, id := user(t, "andy"), callID(t)
	scoped := tenant.Key(tid, andy)
	subscribe(t, b, andy)
	subscribe(t, b, scoped)
	now := time.Now()
	for _, in := range []string{tenant.DefaultID, tid} {
		e := ev(event.Incoming, id, andy, now)
		e.Phone = "7910000000" + map[string]string{tenant.DefaultID: "1", tid: "2"}[in]
		inTenant(t, a, in, id, func(r *event.CallState) []event.Out { return r.ApplyEvent(e) })
	}
	got := rec.WaitFor(t, 2)
	phones := map[string]string{}
	for _, m := range got {
		phones[m.UserKey] = frameOf(t, m).Phone
	}
	if phones[andy] != "79100000001" || phones[scoped] != "79100000002" || len(phones) != 2 {
		t.Fatalf("frames by user key %v: each tenant's frame must reach its own user only", phones)
	}
	for key, phone := range map[string]string{andy: "79100000001", scoped: "79100000002"} {
		s := snapshot(t, b, key, event.ID{})
		if len(s.Active) != 1 || s.Active[0].Phone != phone || s.Active[0].User != andy {
			t.Fatalf("%s's active calls %+v, want the one call of %s shown as user %s", key, s.Active, phone, andy)
		}
	}
	// Both miss the call; the tenant's user marks it seen: the default
	// tenant's copy stays unseen, and the tenant's mark holds after a rating
	// (it reached the tenant's call, not the default one's).
	for _, in := range []string{tenant.DefaultID, tid} {
		r := event.Record{CallID: id, User: andy, Phone: "79101234567", Direction: event.DirIn, Status: event.Missed, Start: now}
		inTenant(t, a, in, id, func(cs *event.CallState) []event.Out { return cs.ApplyHistory(r, now) })
	}
	if n := markSeen(t, b, scoped, id); n != 1 {
		t.Fatalf("the tenant's user marked %d calls, want 1", n)
	}
	for _, in := range []string{tenant.DefaultID, tid} {
		inTenant(t, b, in, id, func(cs *event.CallState) []event.Out { return cs.ApplyRating("4") })
	}
	if seen(t, a, andy)[id] || !seen(t, a, scoped)[id] {
		t.Fatalf("seen: default %v, tenant %v; want only the tenant's call seen", seen(t, a, andy), seen(t, a, scoped))
	}
	for _, key := range []string{andy, scoped} {
		recs, err := a.RecentCalls(context.Background(), key, 10)
		if err != nil || len(recs) != 1 || recs[0].Rating != "4" {
			t.Fatalf("%s's recent calls %+v %v: want its one rated call", key, recs, err)
		}
	}
}
