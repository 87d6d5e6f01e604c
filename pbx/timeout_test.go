package pbx_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/callpop/callpop/pbx"
)

// stallingServer never answers until the client gives up or the test ends.
func stallingServer(tb testing.TB) string {
	tb.Helper()
	url, _ := stallingServerArrivals(tb)
	return url
}

// stallingServerArrivals is stallingServer that also tells of every request
// as it arrives.
func stallingServerArrivals(tb testing.TB) (string, <-chan struct{}) {
	tb.Helper()
	release := make(chan struct{})
	arrived := make(chan struct{}, 100)
	srv, _ := countingServer(tb, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	tb.Cleanup(func() { close(release) }) // runs before srv.Close
	return srv.URL, arrived
}

func TestContextDeadlineMakesThePBXUnavailable(t *testing.T) {
	t.Parallel()
	c := newClient(t, stallingServer(t), pbx.Config{})
	for name, call := range commands("andy") {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		err := call(ctx, c)
		cancel()
		if !errors.Is(err, pbx.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestConfigTimeoutBoundsEachAttempt(t *testing.T) {
	t.Parallel()
	c := newClient(t, stallingServer(t), pbx.Config{Timeout: 20 * time.Millisecond, Retries: 1})
	start := time.Now()
	_, err := c.Accounts(t.Context()) // two attempts of 20 ms
	if !errors.Is(err, pbx.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestCancelledCallIsNotBlamedOnThePBX(t *testing.T) {
	t.Parallel()
	url, arrived := stallingServerArrivals(t)
	c := newClient(t, url, pbx.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-arrived // the PBX has the request and holds it
		cancel()
	}()
	_, err := c.MakeCall(ctx, "andy", "79101234567")
	if !errors.Is(err, context.Canceled) || errors.Is(err, pbx.ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
}
