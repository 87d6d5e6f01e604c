package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// crmSink is a CRM endpoint receiving forwarded call records; it can be
// made to fail.
type crmSink struct {
	down atomic.Bool
	mu   sync.Mutex
	got  map[string]int // callid → deliveries
	seen []map[string]any
	keys []string // Idempotency-Key of each of seen
}

func newCRMSink(t *testing.T) (*crmSink, string) {
	c := &crmSink{got: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c.down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		var item map[string]any
		if err := json.NewDecoder(r.Body).Decode(&item); err != nil {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.got[fmt.Sprint(item["callid"])]++
		c.seen = append(c.seen, item)
		c.keys = append(c.keys, r.Header.Get("Idempotency-Key"))
		c.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return c, srv.URL
}

func (c *crmSink) waitFor(t *testing.T, callids ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c.mu.Lock()
		missing := 0
		for _, id := range callids {
			if c.got[id] == 0 {
				missing++
			}
		}
		c.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d records never reached the CRM: %v", missing, len(callids), c.got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (n *node) history(user, callid, status string) {
	n.t.Helper()
	st, body := n.post("cmd", "history", "type", "in", "user", user, "phone", "79990001122",
		"start", "20261125T120000Z", "duration", "0", "callid", callid, "status", status)
	if st != http.StatusOK {
		n.t.Fatalf("history %s: %d %v", callid, st, body)
	}
}

// TestHistoryForwardingSurvivesACRMOutageAndARestart: records posted while the
// CRM is down, and while callpop restarts, all reach the CRM, each once, with
// the flags the document's scenarios need.
func TestHistoryForwardingSurvivesACRMOutageAndARestart(t *testing.T) {
	t.Parallel()
	crm, url := newCRMSink(t)
	dir := t.TempDir()
	args := []string{"--history-forward-url", url, "--data-dir", dir}
	crm.down.Store(true)
	a := startNode(t, testConfig(t, args...), nil)
	a.history("andy", "f-1", "Missed")
	a.history("pbx", "f-2", "Missed")
	a.stop() // the CRM never answered: both wait in the journal

	crm.down.Store(false)
	b := startNode(t, testConfig(t, args...), nil)
	b.history("andy", "f-1", "Missed") // the PBX repeats itself: nothing doubles
	b.history("mike", "f-3", "Success")
	crm.waitFor(t, "f-1", "f-2", "f-3")
	b.stop()
	crm.mu.Lock()
	defer crm.mu.Unlock()
	for id, n := range crm.got {
		if n != 1 {
			t.Errorf("%s delivered %d times", id, n)
		}
	}
	flags := map[string][]any{}
	for _, item := range crm.seen {
		flags[fmt.Sprint(item["callid"])], _ = item["flags"].([]any)
	}
	if len(flags["f-1"]) != 1 || flags["f-1"][0] != "missed_unknown_number" {
		t.Errorf("f-1 flags %v", flags["f-1"])
	}
	if len(flags["f-2"]) != 2 { // unknown number and no person behind "pbx"
		t.Errorf("f-2 flags %v", flags["f-2"])
	}
	if len(flags["f-3"]) != 0 {
		t.Errorf("f-3 flags %v", flags["f-3"])
	}
}

func TestHistoryForwardingAcrossNodesOnRedis(t *testing.T) {
	t.Parallel()
	crm, url := newCRMSink(t)
	a, b := func() (*node, *node) {
		rs := redisForTest(t)
		args := []string{"--redis-url", rs, "--history-forward-url", url}
		return startNode(t, testConfig(t, args...), nil), startNode(t, testConfig(t, args...), nil)
	}()
	a.history("andy", "r-1", "Success")
	b.history("mike", "r-2", "Missed")
	crm.waitFor(t, "r-1", "r-2")
}

func (n *node) rating(callid, value string) {
	n.t.Helper()
	if st, body := n.post("cmd", "rating", "callid", callid, "rating", value, "user", "andy"); st != http.StatusOK {
		n.t.Fatalf("rating %s: %d %v", callid, st, body)
	}
}

// TestLateRatingIsForwardedUnderItsOwnKey: a rating that arrives after the
// call's record sends the record again, with the rating, under
// <callid>:<user>:rating:<rating>, once however often the PBX repeats it; a
// rating that arrives first is in the record itself.
func TestLateRatingIsForwardedUnderItsOwnKey(t *testing.T) {
	t.Parallel()
	crm, url := newCRMSink(t)
	n := startNode(t, testConfig(t, "--history-forward-url", url, "--data-dir", t.TempDir()), nil)
	n.history("andy", "late", "Success")
	crm.waitFor(t, "late")
	n.rating("late", "5")
	n.rating("late", "5") // the PBX repeats itself
	n.rating("early", "3")
	n.history("andy", "early", "Success")
	n.history("andy", "last", "Success")
	crm.waitFor(t, "last") // records go out in order: everything before it is there

	crm.mu.Lock()
	defer crm.mu.Unlock()
	type sent struct{ header, key, callid, rating string }
	var got []sent
	for i, item := range crm.seen {
		r, _ := item["rating"].(string)
		got = append(got, sent{crm.keys[i], fmt.Sprint(item["key"]), fmt.Sprint(item["callid"]), r})
	}
	want := []sent{
		{"late:andy", "late:andy", "late", ""},
		{"late:andy:rating:5", "late:andy:rating:5", "late", "5"},
		{"early:andy", "early:andy", "early", "3"},
		{"last:andy", "last:andy", "last", ""},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the CRM got\n%v\nwant\n%v", got, want)
	}
}
