package forward_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/forward"
	"github.com/callpop/callpop/internal/redistest"
)

// waitTimeout bounds every wait for something asynchronous; it is a
// deadlock guard, not an expectation of speed.
const waitTimeout = 30 * time.Second

// crmRequest is one POST the fake CRM received.
type crmRequest struct {
	item   forward.Item
	body   []byte
	path   string
	header http.Header
	status int // what the CRM answered; 0 when the client went away first
}

// crm is a CRM endpoint over real HTTP that records every POST and answers
// what answer says (200 when answer is nil).
type crm struct {
	srv *httptest.Server

	mu       sync.Mutex
	reqs     []crmRequest // guarded by mu
	inFlight int          // guarded by mu
	maxIn    int          // most requests in flight at once; guarded by mu
	errs     []string     // malformed requests; guarded by mu
}

// answerFunc decides the n-th request's (1-based) answer: a status and a
// body. It may set headers on w, take the connection over (and return 0), or
// block until r's context ends.
type answerFunc func(n int, it forward.Item, w http.ResponseWriter, r *http.Request) (int, string)

func newCRM(tb testing.TB, answer answerFunc) *crm {
	tb.Helper()
	c := &crm{}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var it forward.Item
		if err == nil {
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			err = dec.Decode(&it)
		}
		c.mu.Lock()
		if err != nil || r.Method != http.MethodPost {
			c.errs = append(c.errs, fmt.Sprintf("%s %q: %v", r.Method, body, err))
		}
		n := len(c.reqs) + 1
		c.reqs = append(c.reqs, crmRequest{item: it, body: body, path: r.URL.Path, header: r.Header.Clone()})
		c.inFlight++
		c.maxIn = max(c.maxIn, c.inFlight)
		c.mu.Unlock()

		status, answerBody := http.StatusOK, ""
		if answer != nil {
			status, answerBody = answer(n, it, w, r)
		}
		if status != 0 {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, answerBody)
		}
		if r.Context().Err() != nil {
			status = 0 // the forwarder gave up on this request: it never saw the answer
		}
		c.mu.Lock()
		c.reqs[n-1].status = status
		c.inFlight--
		c.mu.Unlock()
	}))
	tb.Cleanup(func() {
		c.srv.Close()
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, e := range c.errs {
			tb.Errorf("CRM got a malformed request: %s", e)
		}
	})
	return c
}

func (c *crm) URL() string { return c.srv.URL + "/history" }

func (c *crm) requests() []crmRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.reqs)
}

// accepted returns the callids the CRM answered 2xx, in order.
func (c *crm) accepted() []string {
	var ids []string
	for _, r := range c.requests() {
		if r.status >= 200 && r.status < 300 {
			ids = append(ids, r.item.CallID)
		}
	}
	return ids
}

// distinct returns ids without repeats, in order of first occurrence.
func distinct(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// backend is a durable store the queues of a test live in. open returns a
// queue on it: a new node on the same Redis, or the directory reopened
// (closing the previous FileQueue first, as a restart does).
type backend struct {
	name string
	new  func(tb testing.TB) (open func() forward.Queue)
}

var backends = []backend{
	{"file", func(tb testing.TB) func() forward.Queue {
		dir := tb.TempDir()
		var last *forward.FileQueue
		return func() forward.Queue {
			if last != nil {
				if err := last.Close(); err != nil {
					tb.Fatal(err)
				}
			}
			q, err := forward.OpenFileQueue(dir, forward.FileConfig{}, zaptest.NewLogger(tb))
			if err != nil {
				tb.Fatal(err)
			}
			tb.Cleanup(func() { _ = q.Close() })
			last = q
			return q
		}
	}},
	{"redis", func(tb testing.TB) func() forward.Queue {
		srv := redistest.Start(tb)
		return func() forward.Queue {
			q, err := forward.NewRedisQueue(srv.Client(), forward.RedisConfig{LeaseTTL: 10 * time.Second})
			if err != nil {
				tb.Fatal(err)
			}
			return q
		}
	}},
}

// eachBackend runs test once per backend, in parallel.
func eachBackend(t *testing.T, test func(t *testing.T, open func() forward.Queue)) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			test(t, b.new(t))
		})
	}
}

// testConfig is a Forwarder config with short back-offs.
func testConfig(url string) forward.Config {
	return forward.Config{URL: url, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Timeout: 5 * time.Second}
}

// newForwarder builds a Forwarder with its own registry.
func newForwarder(tb testing.TB, cfg forward.Config, q forward.Queue) *forward.Forwarder {
	tb.Helper()
	reg := prometheus.NewRegistry()
	f, err := forward.New(cfg, q, zaptest.NewLogger(tb), reg)
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

// running is a Forwarder.Run in progress.
type running struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Run's result, once done is closed
}

func start(tb testing.TB, f *forward.Forwarder) *running {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = f.Run(ctx)
		close(r.done)
	}()
	tb.Cleanup(func() { r.stop(tb) })
	return r
}

// stop cancels Run and waits for it to return; Run must return nil.
func (r *running) stop(tb testing.TB) {
	tb.Helper()
	r.cancel()
	r.wait(tb)
}

// wait waits for Run to return (its context cancelled elsewhere).
func (r *running) wait(tb testing.TB) {
	tb.Helper()
	select {
	case <-r.done:
		if r.err != nil {
			tb.Errorf("Run: %v", r.err)
		}
	case <-time.After(waitTimeout):
		tb.Fatal("Run did not return after its context ended")
	}
}

// record returns a valid call record; callid names it.
func record(callid string) event.Record {
	return event.Record{
		CallID: callid, User: "andy@acme", Phone: "79101234567", Direction: event.DirIn,
		Status: event.Success, Start: time.Date(2017, 7, 3, 12, 11, 10, 0, time.UTC), Duration: 124,
		Link:    "https://pbx.example.com/rec?id=" + callid + "&fmt=mp3",
		Contact: &event.Contact{Name: "Acme Ltd", Responsible: "andy"},
	}
}

func callids(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%03d", prefix, i)
	}
	return ids
}

func enqueue(tb testing.TB, f *forward.Forwarder, ids ...string) {
	tb.Helper()
	for _, id := range ids {
		if err := f.Enqueue(context.Background(), record(id)); err != nil {
			tb.Fatalf("Enqueue %s: %v", id, err)
		}
	}
}

func stats(tb testing.TB, q forward.Queue) forward.Stats {
	tb.Helper()
	s, err := q.Stats(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// metric reads f's counter or gauge name (the series of label, for a
// labelled one) with prometheus/testutil.
func metric(tb testing.TB, f *forward.Forwarder, name string, label ...string) float64 {
	tb.Helper()
	return testutil.ToFloat64(forward.Metric(f, name, label...))
}
