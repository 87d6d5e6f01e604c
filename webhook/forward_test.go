package webhook_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/webhook"
)

// fakeForwarder records what the handler enqueues; fail makes the next
// EnqueueRating fail once.
type fakeForwarder struct {
	mu   sync.Mutex
	got  []string // "record <callid> <rating>" or "rating <callid> <rating>"
	fail bool
}

func (f *fakeForwarder) Enqueue(_ context.Context, rec event.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, fmt.Sprintf("record %s %s", rec.CallID, rec.Rating))
	return nil
}

func (f *fakeForwarder) EnqueueRating(_ context.Context, rec event.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		f.fail = false
		return errors.New("queue full")
	}
	f.got = append(f.got, fmt.Sprintf("rating %s %s", rec.CallID, rec.Rating))
	return nil
}

// TestRatingIsForwardedWhenItArrivesAfterTheRecord: a late rating sends the
// record again (also when the PBX repeats it after a 503, and for a changed
// rating); an early one rides in the record and is not sent again when
// repeated.
func TestRatingIsForwardedWhenItArrivesAfterTheRecord(t *testing.T) {
	t.Parallel()
	fwd := &fakeForwarder{}
	srv := serve(t, webhook.Config{Forward: fwd}, memory.New(memory.Config{}), nil)
	rating := func(callid, v string) fields {
		return fields{"cmd": "rating", "callid": callid, "rating": v, "user": "andy", "crm_token": testToken}
	}

	checkAnswer(t, post(t, srv, historyFields("late")), http.StatusOK, "")
	fwd.mu.Lock()
	fwd.fail = true
	fwd.mu.Unlock()
	checkAnswer(t, post(t, srv, rating("late", "4")), http.StatusServiceUnavailable, "")
	checkAnswer(t, post(t, srv, rating("late", "4")), http.StatusOK, "") // the PBX tries again
	checkAnswer(t, post(t, srv, rating("late", "5")), http.StatusOK, "") // changed

	checkAnswer(t, post(t, srv, rating("early", "3")), http.StatusOK, "")
	checkAnswer(t, post(t, srv, historyFields("early")), http.StatusOK, "")
	checkAnswer(t, post(t, srv, rating("early", "3")), http.StatusOK, "") // a repeat: in the record already

	checkAnswer(t, post(t, srv, rating("unknown", "3")), http.StatusOK, "") // no record yet: nothing to send

	want := []string{"record late ", "rating late 4", "rating late 5", "record early 3"}
	fwd.mu.Lock()
	defer fwd.mu.Unlock()
	if fmt.Sprint(fwd.got) != fmt.Sprint(want) {
		t.Fatalf("enqueued %q, want %q", fwd.got, want)
	}
}
