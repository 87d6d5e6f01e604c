package forward_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/forward"
)

// A missed call in the IVR from an unknown number reaches the CRM flagged
// for a lead, under the CRM's default user.
func ExampleForwarder() {
	got := make(chan struct{})
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		fmt.Println(r.Method, r.URL.Path, "Idempotency-Key:", r.Header.Get("Idempotency-Key"))
		fmt.Println(string(body))
		w.WriteHeader(http.StatusNoContent)
		close(got)
	}))
	defer crm.Close()

	dir, err := os.MkdirTemp("", "callpop-forward-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	q, err := forward.OpenFileQueue(dir, forward.FileConfig{}, nil)
	if err != nil {
		panic(err)
	}
	defer q.Close()
	f, err := forward.New(forward.Config{URL: crm.URL + "/api/calls"}, q, nil, nil)
	if err != nil {
		panic(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- f.Run(ctx) }()

	err = f.Enqueue(ctx, event.Record{
		CallID: "B10D0EB124F4E64AFAEA-1511", User: "pbx", Phone: "79101234567", Direction: event.DirIn,
		Status: event.Missed, Start: time.Date(2017, 7, 3, 12, 11, 10, 0, time.UTC), Duration: 31,
	})
	if err != nil {
		panic(err) // the webhook answers 503 instead
	}
	<-got
	cancel()
	<-done
	// Output:
	// POST /api/calls Idempotency-Key: B10D0EB124F4E64AFAEA-1511:pbx
	// {"key":"B10D0EB124F4E64AFAEA-1511:pbx","callid":"B10D0EB124F4E64AFAEA-1511","user":"pbx","phone":"79101234567","direction":"in","status":"Missed","start":"2017-07-03T12:11:10Z","duration":31,"flags":["missed_unknown_number","unmapped_user"]}
}
