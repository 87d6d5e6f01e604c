package webhook_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/webhook"
)

func snapshot(tb testing.TB, b *memory.Broker, user string) event.Snapshot {
	tb.Helper()
	s, err := b.Snapshot(tb.Context(), user, event.ID{})
	if err != nil {
		tb.Fatalf("Snapshot(%q): %v", user, err)
	}
	return s
}

func recent(tb testing.TB, b *memory.Broker, user string) []event.Record {
	tb.Helper()
	rs, err := b.RecentCalls(tb.Context(), user, 10)
	if err != nil {
		tb.Fatalf("RecentCalls(%q): %v", user, err)
	}
	return rs
}

func TestIncomingOpensPopupWithContact(t *testing.T) {
	t.Parallel()
	srv, b := newTestServer(t)
	checkAnswer(t, post(t, srv, eventFields("call-1").with("user", "Andy@acme", "phone", "89101234567")), http.StatusOK, "")

	snap := snapshot(t, b, "andy")
	if len(snap.Active) != 1 {
		t.Fatalf("active %+v, want one call", snap.Active)
	}
	if snap.Last.IsZero() {
		t.Error("Last is zero after an event")
	}
	c := snap.Active[0]
	if c.CallID != "call-1" || c.Event != event.Incoming || c.User != "andy" || c.Direction != event.DirIn ||
		c.Phone != "89101234567" || c.GroupRealName != "Sales" || c.Diversion != "74950000001" {
		t.Errorf("active call %+v, want INCOMING call-1 for andy, in, from 89101234567 via Sales", c)
	}
	if c.Contact == nil || c.Contact.Name != knownName || c.Contact.Responsible != knownResponsible {
		t.Errorf("contact %+v, want %q / %q", c.Contact, knownName, knownResponsible)
	}
	if other := snapshot(t, b, "mike"); len(other.Active) != 0 || !other.Last.IsZero() {
		t.Errorf("mike sees %+v, want nothing", other)
	}
}

func TestDuplicateIncomingChangesNothing(t *testing.T) {
	t.Parallel()
	srv, b := newTestServer(t)
	ev := eventFields("dup-1").with("user", "Andy@acme")
	checkAnswer(t, post(t, srv, ev), http.StatusOK, "")
	first := snapshot(t, b, "andy")

	// The same webhook again, and once more in another body type and
	// user spelling: answered 200, applied never.
	checkAnswer(t, post(t, srv, ev), http.StatusOK, "")
	checkAnswer(t, do(t, srv, jsonReq(ev.with("user", "andy"))), http.StatusOK, "")

	second := snapshot(t, b, "andy")
	if second.Last != first.Last {
		t.Errorf("Last moved from %v to %v on a duplicate", first.Last, second.Last)
	}
	if len(second.Active) != 1 {
		t.Errorf("active %+v, want the one call", second.Active)
	}
}

func TestCallLifecycleMovesAndClosesPopup(t *testing.T) {
	t.Parallel()
	srv, b := newTestServer(t)
	ev := eventFields("life-1")
	var lastID event.ID
	for _, step := range []struct {
		typ        string
		wantActive event.Type // "" = no active call
	}{
		{"INCOMING", event.Incoming},
		{"ACCEPTED", event.Accepted},
		{"COMPLETED", ""},
	} {
		checkAnswer(t, post(t, srv, ev.with("type", step.typ)), http.StatusOK, "")
		snap := snapshot(t, b, "andy")
		if !lastID.Less(snap.Last) {
			t.Errorf("after %s: Last %v did not move past %v", step.typ, snap.Last, lastID)
		}
		lastID = snap.Last
		switch {
		case step.wantActive == "" && len(snap.Active) != 0:
			t.Errorf("after %s: active %+v, want none", step.typ, snap.Active)
		case step.wantActive != "" && (len(snap.Active) != 1 || snap.Active[0].Event != step.wantActive):
			t.Errorf("after %s: active %+v, want one %s", step.typ, snap.Active, step.wantActive)
		}
	}
	// A late INCOMING for the finished call opens nothing.
	checkAnswer(t, post(t, srv, ev.with("type", "INCOMING")), http.StatusOK, "")
	if snap := snapshot(t, b, "andy"); len(snap.Active) != 0 || snap.Last != lastID {
		t.Errorf("late INCOMING changed the state: %+v", snap)
	}
}

func TestDirectionIsInferredWhenMissing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, typ, dir, want string
	}{
		{"OutgoingIsOut", "OUTGOING", "", event.DirOut},
		{"IncomingIsIn", "INCOMING", "", event.DirIn},
		{"GivenDirectionWins", "INCOMING", "OUT", event.DirOut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, b := newTestServer(t)
			ev := eventFields("dir-1").with("type", tc.typ, "direction", tc.dir)
			if tc.dir == "" {
				ev = ev.without("direction")
			}
			checkAnswer(t, post(t, srv, ev), http.StatusOK, "")
			snap := snapshot(t, b, "andy")
			if len(snap.Active) != 1 || snap.Active[0].Direction != tc.want {
				t.Errorf("active %+v, want one call with direction %q", snap.Active, tc.want)
			}
		})
	}
}

func TestHistoryReachesRecentCalls(t *testing.T) {
	t.Parallel()
	srv, b := newTestServer(t)
	hi := historyFields("hist-1").with("user", "Andy@acme", "status", "missed", "type", "IN", "duration", "0",
		"phone", "+79101234567")
	checkAnswer(t, post(t, srv, hi), http.StatusOK, "")

	rs := recent(t, b, "andy")
	if len(rs) != 1 {
		t.Fatalf("recent calls %+v, want one", rs)
	}
	r := rs[0]
	wantStart := time.Date(2017, 7, 3, 12, 11, 10, 0, time.UTC)
	if r.CallID != "hist-1" || r.Status != event.Missed || r.Direction != event.DirIn || r.Duration != 0 ||
		!r.Start.Equal(wantStart) || r.Link != "https://link/file.mp3" || r.Phone != "+79101234567" ||
		r.GroupRealName != "Sales" || r.Ext != "101" {
		t.Errorf("record %+v, want Missed in call hist-1 started %v, 0 s, with link", r, wantStart)
	}
	if r.Contact == nil || r.Contact.Name != knownName {
		t.Errorf("record contact %+v, want %q", r.Contact, knownName)
	}

	// The same record again is stored once.
	checkAnswer(t, post(t, srv, hi), http.StatusOK, "")
	if rs := recent(t, b, "andy"); len(rs) != 1 {
		t.Errorf("recent calls after a repeat %+v, want one", rs)
	}
}

func TestHistoryClosesOpenPopup(t *testing.T) {
	t.Parallel()
	srv, b := newTestServer(t)
	checkAnswer(t, post(t, srv, eventFields("close-1")), http.StatusOK, "")
	if snap := snapshot(t, b, "andy"); len(snap.Active) != 1 {
		t.Fatalf("active %+v, want the ringing call", snap.Active)
	}
	checkAnswer(t, post(t, srv, historyFields("close-1").with("status", "Missed")), http.StatusOK, "")
	if snap := snapshot(t, b, "andy"); len(snap.Active) != 0 {
		t.Errorf("active %+v after the record, want none", snap.Active)
	}
}

func TestHistoryForPBXReachesEveryLeg(t *testing.T) {
	t.Parallel()
	srv, b := newTestServer(t)
	for _, u := range []string{"andy@acme", "mike@acme"} {
		checkAnswer(t, post(t, srv, eventFields("group-1").with("user", u)), http.StatusOK, "")
	}
	checkAnswer(t, post(t, srv, historyFields("group-1").with("user", "pbx", "status", "Missed")), http.StatusOK, "")
	for _, u := range []string{"andy", "mike"} {
		if rs := recent(t, b, u); len(rs) != 1 || rs[0].CallID != "group-1" {
			t.Errorf("%s's recent calls %+v, want group-1", u, rs)
		}
	}
	if rs := recent(t, b, "pbx"); len(rs) != 0 {
		t.Errorf("pbx got records %+v, want none", rs)
	}
}

// TestRatingAttachesToRecord: "a rating is attached to the call's record"
// (docs/contract.md), whichever of the two arrives first.
//
// RatingBeforeRecord fails today: event.CallState.ApplyRating keeps an early
// rating in the record and returns no Out, and both brokers' Update return
// before storing a record when fn returned no Out (broker/memory leaves a new
// entry's expires at zero, so the next Update starts afresh; broker/redis
// never SETs it).
func TestRatingAttachesToRecord(t *testing.T) {
	t.Parallel()
	rating := fields{"cmd": "rating", "callid": "rate-1", "rating": "5", "user": "andy", "crm_token": testToken}
	hi := historyFields("rate-1")
	incoming := eventFields("rate-1")
	completed := eventFields("rate-1").with("type", "COMPLETED")
	for _, tc := range []struct {
		name  string
		steps []fields
	}{
		{"RatingAfterRecord", []fields{hi, rating}},
		{"RatingAfterEventsBeforeRecord", []fields{incoming, completed, rating, hi}},
		{"RatingBeforeRecord", []fields{rating, hi}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, b := newTestServer(t)
			for _, f := range tc.steps {
				checkAnswer(t, post(t, srv, f), http.StatusOK, "")
			}
			if rs := recent(t, b, "andy"); len(rs) != 1 || rs[0].Rating != "5" {
				t.Errorf("recent calls %+v, want rate-1 rated 5", rs)
			}
		})
	}
}

func TestFailingBrokerAnswersUnavailable(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{err: fmt.Errorf("redis: %w", event.ErrUnavailable)}
	srv := serve(t, webhook.Config{}, pub, newTestDirectory(t))
	t.Run("Answers", func(t *testing.T) { failingBrokerAnswers(t, srv) })
	// The group above has finished: every parallel request was answered.
	got := pub.updates()
	slices.Sort(got)
	if want := []string{"fail-event", "fail-history", "fail-rating"}; !slices.Equal(got, want) {
		t.Errorf("broker updates for %v, want only the valid changes %v", got, want)
	}
}

func failingBrokerAnswers(t *testing.T, srv *httptest.Server) {
	const unavailable = `{"error":"Service unavailable"}`
	for _, tc := range []struct {
		name       string
		f          fields
		wantStatus int
		want       string
	}{
		{"EventIsUnavailable", eventFields("fail-event"), http.StatusServiceUnavailable, unavailable},
		{"HistoryIsUnavailable", historyFields("fail-history"), http.StatusServiceUnavailable, unavailable},
		{"RatingIsUnavailable", fields{"cmd": "rating", "callid": "fail-rating", "rating": "5", "crm_token": testToken},
			http.StatusServiceUnavailable, unavailable},
		// Answers that need no broker are unaffected.
		{"ContactIsAnswered", contactFields("fail-contact"), http.StatusOK, knownAnswer},
		{"WebhookIsAcknowledged", fields{"cmd": "webhook", "type": "sipregs_error", "crm_token": testToken},
			http.StatusOK, ""},
		{"InvalidEventIsStillInvalid", eventFields("fail-invalid").without("phone"), http.StatusBadRequest, invalidParams},
		{"BadTokenIsStillRefused", eventFields("fail-token").with("crm_token", "wrong"), http.StatusUnauthorized, invalidToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkAnswer(t, post(t, srv, tc.f), tc.wantStatus, tc.want)
		})
	}
}

func TestRejectedWebhookPublishesNothing(t *testing.T) {
	t.Parallel()
	pub := &fakePublisher{}
	srv := serve(t, webhook.Config{}, pub, nil)
	for _, rq := range []request{
		form(eventFields("rej-1").with("crm_token", "wrong")),
		form(eventFields("rej-2").without("user")),
		form(historyFields("rej-3").with("start", "yesterday")),
		rawForm(eventFields("rej-4").form() + "&a=1&a=2"),
		form(eventFields("rej-5").with("cmd", "call")),
		form(contactFields("rej-6")),
		rawForm("cmd=rating&crm_token=" + testToken),
	} {
		do(t, srv, rq)
	}
	if got := pub.updates(); len(got) != 0 {
		t.Errorf("rejected or read-only webhooks reached the broker: %v", got)
	}
}

func TestUnavailableIsNotMistakenForInvalid(t *testing.T) {
	t.Parallel()
	// Any broker failure, wrapped or not, is a 503: the PBX must not be
	// told its valid webhook was malformed.
	for _, err := range []error{event.ErrUnavailable, errors.New("boom"), fmt.Errorf("x: %w", webhook.ErrBadBody)} {
		srv := serve(t, webhook.Config{}, &fakePublisher{err: err}, nil)
		checkAnswer(t, post(t, srv, eventFields("unavail")), http.StatusServiceUnavailable, `{"error":"Service unavailable"}`)
	}
}

func TestMetricsCountAnswersByCmdAndStatus(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	h, err := webhook.New(webhook.Config{CRMToken: testToken}, memory.New(memory.Config{}), nil, zaptest.NewLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	srv := serveHandler(t, h)
	post(t, srv, eventFields("m-1"))
	post(t, srv, eventFields("m-2"))
	post(t, srv, eventFields("m-3").with("crm_token", "wrong"))
	post(t, srv, eventFields("m-4").with("cmd", "made-up-cmd"))
	post(t, srv, eventFields("m-5").without("phone"))

	requests := webhook.Requests(h)
	for _, c := range []struct {
		cmd, status string
		want        float64
	}{{"event", "200", 2}, {"unknown", "401", 1}, {"unknown", "400", 1}, {"event", "400", 1}} {
		if got := testutil.ToFloat64(requests.WithLabelValues(c.cmd, c.status)); got != c.want {
			t.Errorf("callpop_webhooks_total{cmd=%q,status=%q} = %v, want %v", c.cmd, c.status, got, c.want)
		}
	}
	// Every known series is exported from the start (6 commands × 8
	// statuses), and nothing a PBX sends adds one: a made-up cmd counts as
	// "unknown", never as a label of its own.
	if n := testutil.CollectAndCount(requests); n != 6*8 {
		t.Errorf("callpop_webhooks_total has %d series, want the 48 known ones", n)
	}
}
