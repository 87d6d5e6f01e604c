package forward_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/forward"
)

// deadLetterer is what both queues offer to look at the dead letters.
type deadLetterer interface {
	DeadLetters(ctx context.Context, limit int) ([]forward.DeadLetter, error)
}

func TestRecordsReachTheCRMAsJSONWithFlags(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		c := newCRM(t, nil)
		cfg := testConfig(c.URL())
		cfg.Header = http.Header{"Authorization": {"Bearer crm-secret"}}
		q := open()
		f := newForwarder(t, cfg, q)

		missedInIVR := record("ivr-1")
		missedInIVR.User, missedInIVR.Status, missedInIVR.Contact, missedInIVR.Link = "pbx", event.Missed, nil, ""
		coldCall := record("out-1")
		coldCall.Direction, coldCall.Contact = event.DirOut, nil
		known := record("known-1")
		recs := []event.Record{missedInIVR, coldCall, known}
		for _, rec := range recs {
			if err := f.Enqueue(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
		}
		start(t, f)
		waitFor(t, "three records at the CRM", func() bool { return len(c.accepted()) == 3 })
		waitFor(t, "three acknowledged", func() bool { return metric(t, f, "callpop_forward_delivered_total") == 3 })

		reqs := c.requests()
		if len(reqs) != 3 {
			t.Fatalf("CRM got %d requests, want 3", len(reqs))
		}
		for i, r := range reqs {
			want := forward.NewItem(recs[i])
			if r.item.Key != want.Key || r.item.CallID != want.CallID || !slices.Equal(r.item.Flags, want.Flags) ||
				!r.item.Start.Equal(want.Start) || r.item.Link != want.Link || r.item.User != want.User {
				t.Errorf("request %d: item %+v, want %+v", i, r.item, want)
			}
			for h, v := range map[string]string{
				"Content-Type": "application/json", "Idempotency-Key": want.Key, "Authorization": "Bearer crm-secret",
			} {
				if got := r.header.Get(h); got != v {
					t.Errorf("request %d: %s = %q, want %q", i, h, got, v)
				}
			}
			if r.path != "/history" {
				t.Errorf("request %d: path %q", i, r.path)
			}
		}
		wantIVR := `{"key":"ivr-1:pbx","callid":"ivr-1","user":"pbx","phone":"79101234567","direction":"in",` +
			`"status":"Missed","start":"2017-07-03T12:11:10Z","duration":124,` +
			`"flags":["missed_unknown_number","unmapped_user"]}`
		if got := string(reqs[0].body); got != wantIVR {
			t.Errorf("body\n got %s\nwant %s", got, wantIVR)
		}
		if got := string(reqs[2].body); !strings.Contains(got, `"link":"https://pbx.example.com/rec?id=known-1&fmt=mp3"`) ||
			!strings.Contains(got, `"contact":{"name":"Acme Ltd","responsible":"andy"},"flags":[]`) {
			t.Errorf("body of a known client's call: %s", got)
		}
		for name, want := range map[string]float64{
			"callpop_forward_enqueued_total": 3, "callpop_forward_delivered_total": 3,
			"callpop_forward_dead_lettered_total": 0, "callpop_forward_duplicates_total": 0,
		} {
			if got := metric(t, f, name); got != want {
				t.Errorf("%s = %v, want %v", name, got, want)
			}
		}
	})
}

func TestCRMOutageLosesNothingAndKeepsOrder(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		// The CRM fails in every retryable way, then recovers.
		c := newCRM(t, func(n int, _ forward.Item, w http.ResponseWriter, _ *http.Request) (int, string) {
			switch n {
			case 1:
				return http.StatusServiceUnavailable, "maintenance"
			case 2:
				w.Header().Set("Retry-After", "1")
				return http.StatusTooManyRequests, ""
			case 3:
				return http.StatusRequestTimeout, ""
			case 4:
				return http.StatusInternalServerError, "oops"
			case 5:
				// Not HTTP at all. (A connection closed before any answer is
				// replayed by net/http itself: the request has an
				// Idempotency-Key.)
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_, _ = conn.Write([]byte("SMTP ready\r\n\r\n"))
					_ = conn.Close()
				}
				return 0, ""
			case 6:
				return http.StatusBadGateway, ""
			}
			return http.StatusOK, ""
		})
		q := open()
		f := newForwarder(t, testConfig(c.URL()), q)
		ids := callids("outage", 20)
		enqueue(t, f, ids[:10]...)
		start(t, f)
		waitFor(t, "the outage to begin", func() bool { return len(c.requests()) >= 1 })
		enqueue(t, f, ids[10:]...) // arriving while the CRM is down
		waitFor(t, "every record at the CRM", func() bool { return len(c.accepted()) >= len(ids) })
		waitFor(t, "every record acknowledged", func() bool {
			return metric(t, f, "callpop_forward_delivered_total") == float64(len(ids))
		})

		if got := c.accepted(); !slices.Equal(got, ids) {
			t.Errorf("CRM accepted %q\nwant %q", got, ids)
		}
		for i, r := range c.requests()[:6] {
			if r.item.CallID != ids[0] {
				t.Errorf("request %d during the outage was %s: a record overtook the one being retried", i+1, r.item.CallID)
			}
		}
		for _, code := range []string{"503", "429", "408", "500", "network", "502"} {
			if got := metric(t, f, "callpop_forward_retries_total", code); got != 1 {
				t.Errorf("retries with code %s = %v, want 1", code, got)
			}
		}
		if s := stats(t, q); s.Queued != 0 {
			t.Errorf("%d records still queued", s.Queued)
		}
		// Counts: the same totals, six failed POSTs, nothing left.
		want := forward.Counts{Delivered: uint64(len(ids)), Failed: 6}
		waitFor(t, "the counts to settle", func() bool { return f.Counts() == want })
	})
}

func TestRestartSendsTheUnacknowledgedRecordAgain(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		const n, cutAt = 30, 10
		cut := make(chan struct{})
		c := newCRM(t, func(k int, _ forward.Item, _ http.ResponseWriter, r *http.Request) (int, string) {
			if k == cutAt {
				close(cut)
				<-r.Context().Done() // the node stops while this POST is in flight
				return 0, ""
			}
			return http.StatusOK, ""
		})
		ids := callids("restart", n)
		f1 := newForwarder(t, testConfig(c.URL()), open())
		enqueue(t, f1, ids...)
		r1 := start(t, f1)
		<-cut
		r1.stop(t)
		if got := len(c.accepted()); got >= n {
			t.Fatalf("the first node delivered %d of %d records: nothing left for a restart", got, n)
		}

		// A new process: the queue reopened from the same directory, or a
		// new node on the same Redis.
		f2 := newForwarder(t, testConfig(c.URL()), open())
		start(t, f2)
		waitFor(t, "every record at the CRM", func() bool { return len(distinct(c.accepted())) == n })

		got := c.accepted()
		if d := distinct(got); !slices.Equal(d, ids) {
			t.Errorf("CRM accepted, first occurrences %q\nwant %q", d, ids)
		}
		if cutReq := c.requests()[cutAt-1]; cutReq.item.CallID != ids[cutAt-1] || cutReq.status != 0 {
			t.Errorf("request %d: %s answered %d, want %s cut short", cutAt, cutReq.item.CallID, cutReq.status, ids[cutAt-1])
		}
		if len(got) != n {
			t.Errorf("CRM accepted %d records, want %d: none was acknowledged twice here", len(got), n)
		}
	})
}

func TestPermanentRejectionGoesToTheDeadLetters(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		c := newCRM(t, func(_ int, it forward.Item, _ http.ResponseWriter, _ *http.Request) (int, string) {
			switch it.CallID {
			case "bad":
				return http.StatusBadRequest, `{"error":"unknown user"}`
			case "gone":
				return http.StatusUnprocessableEntity, ""
			}
			return http.StatusOK, ""
		})
		q := open()
		f := newForwarder(t, testConfig(c.URL()), q)
		enqueue(t, f, "ok-1", "bad", "ok-2", "gone", "ok-3")
		start(t, f)
		waitFor(t, "the good records at the CRM", func() bool { return len(c.accepted()) == 3 })
		waitFor(t, "two dead letters", func() bool { s := stats(t, q); return s.Dead == 2 && s.Queued == 0 })
		waitFor(t, "every record finished", func() bool {
			return metric(t, f, "callpop_forward_delivered_total") == 3 && metric(t, f, "callpop_forward_dead_lettered_total") == 2
		})

		if got := c.accepted(); !slices.Equal(got, []string{"ok-1", "ok-2", "ok-3"}) {
			t.Errorf("accepted %q", got)
		}
		var tries []string
		for _, r := range c.requests() {
			tries = append(tries, r.item.CallID)
		}
		if !slices.Equal(tries, []string{"ok-1", "bad", "ok-2", "gone", "ok-3"}) {
			t.Errorf("requests %q: a rejected record was retried", tries)
		}
		dead, err := q.(deadLetterer).DeadLetters(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(dead) != 2 || dead[0].Key != "bad:andy" || dead[1].Key != "gone:andy" {
			t.Fatalf("dead letters %+v", dead)
		}
		if r := dead[0].Reason; !strings.Contains(r, "400") || !strings.Contains(r, "unknown user") {
			t.Errorf("reason %q", r)
		}
		if !strings.Contains(string(dead[0].Data), `"callid":"bad"`) {
			t.Errorf("dead letter data %s", dead[0].Data)
		}
		if got := metric(t, f, "callpop_forward_dead_lettered_total"); got != 2 {
			t.Errorf("dead_lettered_total = %v", got)
		}
		want := forward.Counts{Delivered: 3, Failed: 2, Dead: 2}
		waitFor(t, "the counts to settle", func() bool { return f.Counts() == want })
	})
}

func TestSameRecordEnqueuedTwiceIsQueuedOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		c := newCRM(t, nil)
		q := open()
		f := newForwarder(t, testConfig(c.URL()), q)
		add := func(callid, user string) {
			t.Helper()
			rec := record(callid)
			rec.User = user
			if err := f.Enqueue(context.Background(), rec); err != nil {
				t.Fatal(err)
			}
		}
		add("c1", "andy@acme")
		add("c1", "Andy")      // the same user: a repeat
		add("c1", "mike@acme") // the same call, another user's record
		add("c2", "andy@acme")
		add("c1", "andy@acme")
		if s := stats(t, q); s.Queued != 3 {
			t.Errorf("queued %d, want 3", s.Queued)
		}
		if got := metric(t, f, "callpop_forward_duplicates_total"); got != 2 {
			t.Errorf("duplicates = %v, want 2", got)
		}

		// The marks outlive a restart.
		q = open()
		f = newForwarder(t, testConfig(c.URL()), q)
		add("c1", "andy@acme")
		if s := stats(t, q); s.Queued != 3 {
			t.Errorf("after a restart: queued %d, want 3", s.Queued)
		}
		start(t, f)
		waitFor(t, "three records at the CRM", func() bool { return len(c.accepted()) == 3 })
		waitFor(t, "an empty queue", func() bool { return stats(t, q).Queued == 0 })
		var keys []string
		for _, r := range c.requests() {
			keys = append(keys, r.item.Key)
		}
		if !slices.Equal(keys, []string{"c1:andy", "c1:mike", "c2:andy"}) {
			t.Errorf("CRM got %q", keys)
		}
	})
}

func TestRedirectsThatWouldDropTheBodyAreNotFollowed(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		c := newCRM(t, func(n int, _ forward.Item, w http.ResponseWriter, _ *http.Request) (int, string) {
			switch n {
			case 1: // a 302 turns a POST into a GET: not followed, retried
				w.Header().Set("Location", "/elsewhere")
				return http.StatusFound, ""
			case 2: // a 307 keeps the method and the body: followed
				w.Header().Set("Location", "/history/v2")
				return http.StatusTemporaryRedirect, ""
			}
			return http.StatusOK, ""
		})
		q := open()
		f := newForwarder(t, testConfig(c.URL()), q)
		enqueue(t, f, "r1")
		start(t, f)
		waitFor(t, "the record at the CRM", func() bool { return len(c.accepted()) == 1 })
		reqs := c.requests()
		if len(reqs) != 3 || reqs[2].path != "/history/v2" || reqs[2].item.CallID != "r1" {
			t.Errorf("requests %+v", reqs)
		}
		if got := metric(t, f, "callpop_forward_retries_total", "302"); got != 1 {
			t.Errorf("retries on 302 = %v", got)
		}
	})
}

func TestRunStopsWhenItsContextEndsAndRunsOnce(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		c := newCRM(t, nil)
		f := newForwarder(t, testConfig(c.URL()), open())
		ctx, cancel := context.WithCancel(context.Background())
		results := make(chan error, 2)
		for range 2 {
			go func() { results <- f.Run(ctx) }()
		}
		if err := <-results; !errors.Is(err, forward.ErrRunning) {
			t.Errorf("second Run = %v, want ErrRunning", err)
		}
		cancel()
		select {
		case err := <-results:
			if err != nil {
				t.Errorf("Run after its context ended = %v, want nil", err)
			}
		case <-time.After(waitTimeout):
			t.Fatal("Run did not stop")
		}
	})
}

func TestEnqueueRefusesARecordWithoutCallID(t *testing.T) {
	t.Parallel()
	f := newForwarder(t, testConfig("http://crm.invalid/"), backends[0].new(t)())
	if err := f.Enqueue(context.Background(), record("")); !errors.Is(err, forward.ErrInvalidRecord) {
		t.Errorf("Enqueue = %v, want ErrInvalidRecord", err)
	}
	if err := f.EnqueueRating(context.Background(), record("c1")); !errors.Is(err, forward.ErrInvalidRecord) {
		t.Errorf("EnqueueRating without a rating = %v, want ErrInvalidRecord", err)
	}
}

func TestNewValidatesItsConfig(t *testing.T) {
	t.Parallel()
	q := backends[0].new(t)()
	for _, tc := range []struct {
		name string
		cfg  forward.Config
		q    forward.Queue
	}{
		{"no URL", forward.Config{}, q},
		{"not http", forward.Config{URL: "ftp://crm/x"}, q},
		{"no host", forward.Config{URL: "https:///x"}, q},
		{"no queue", forward.Config{URL: "https://crm/x"}, nil},
		{"backoff upside down", forward.Config{URL: "https://crm/x", MinBackoff: time.Minute, MaxBackoff: time.Second}, q},
	} {
		if _, err := forward.New(tc.cfg, tc.q, nil, nil); err == nil {
			t.Errorf("%s: New accepted it", tc.name)
		}
	}
	if _, err := forward.New(forward.Config{URL: "https://crm.example.com/api/calls"}, q, nil, nil); err != nil {
		t.Errorf("New with defaults: %v", err)
	}
}

// The oldest-item gauge tells an operator the CRM is not taking records.
func TestQueueGaugesShowAStuckRecord(t *testing.T) {
	eachBackend(t, func(t *testing.T, open func() forward.Queue) {
		var failing atomic.Bool
		failing.Store(true)
		c := newCRM(t, func(int, forward.Item, http.ResponseWriter, *http.Request) (int, string) {
			if failing.Load() {
				return http.StatusServiceUnavailable, ""
			}
			return http.StatusOK, ""
		})
		q := open()
		f := newForwarder(t, testConfig(c.URL()), q)
		enqueue(t, f, "g1", "g2")
		start(t, f)
		waitFor(t, "a few retries", func() bool { return len(c.requests()) >= 3 })
		waitFor(t, "the gauges", func() bool {
			return metric(t, f, "callpop_forward_queued") == 2 && metric(t, f, "callpop_forward_oldest_age_seconds") > 0
		})
		failing.Store(false)
		waitFor(t, "the queue to drain", func() bool {
			return metric(t, f, "callpop_forward_queued") == 0 && metric(t, f, "callpop_forward_oldest_age_seconds") == 0
		})
	})
}
