package forward_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callpop/callpop/forward"
	"github.com/callpop/callpop/internal/redistest"
)

func TestTwoNodesOnOneRedisQueueLoseNothing(t *testing.T) {
	t.Parallel()
	twoNodesLoseNothing(t, redistest.Start(t).Client())
}

// TestTwoNodesOnARedisClusterQueueLoseNothing: the queue's scripts touch
// keys of one hash tag only, so they run on Redis Cluster as they are.
func TestTwoNodesOnARedisClusterQueueLoseNothing(t *testing.T) {
	t.Parallel()
	twoNodesLoseNothing(t, redistest.StartCluster(t).Client())
}

func twoNodesLoseNothing(t *testing.T, rdb goredis.UniversalClient) {
	const n, cutAt = 40, 15
	cut := make(chan string, 1)
	c := newCRM(t, func(k int, _ forward.Item, _ http.ResponseWriter, r *http.Request) (int, string) {
		if k == cutAt {
			cut <- r.Header.Get("X-Node")
			<-r.Context().Done() // that node stops while this POST is in flight
			return 0, ""
		}
		return http.StatusOK, ""
	})
	nodes := map[string]*forward.Forwarder{}
	for _, name := range []string{"a", "b"} {
		q, err := forward.NewRedisQueue(rdb, forward.RedisConfig{LeaseTTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(c.URL())
		cfg.Header = http.Header{"X-Node": {name}}
		nodes[name] = newForwarder(t, cfg, q)
	}
	ids := callids("cluster", n)
	for i, id := range ids { // webhooks land on either node
		enqueue(t, nodes[[]string{"a", "b"}[i%2]], id)
	}
	runs := map[string]*running{"a": start(t, nodes["a"]), "b": start(t, nodes["b"])}
	stopped := <-cut
	runs[stopped].stop(t)
	waitFor(t, "every record at the CRM", func() bool { return len(distinct(c.accepted())) == n })

	if d := distinct(c.accepted()); !slices.Equal(d, ids) {
		t.Errorf("CRM accepted, first occurrences %q\nwant %q", d, ids)
	}
	c.mu.Lock()
	maxIn := c.maxIn
	c.mu.Unlock()
	if maxIn != 1 {
		t.Errorf("%d POSTs in flight at once; one node at a time sends", maxIn)
	}
	reqs := c.requests()
	for _, r := range reqs[cutAt:] {
		if r.header.Get("X-Node") == stopped {
			t.Errorf("node %s sent %s after it stopped", stopped, r.item.CallID)
		}
	}
	if r := reqs[cutAt]; r.item.CallID != ids[cutAt-1] {
		t.Errorf("after the cut the other node sent %s first, want the record cut short, %s", r.item.CallID, ids[cutAt-1])
	}
}

func TestRedisBackoffIsSharedAndTheLeaseHandedOver(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	newQ := func() *forward.RedisQueue {
		q, err := forward.NewRedisQueue(srv.Client(), forward.RedisConfig{LeaseTTL: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	a, b := newQ(), newQ()
	push(t, a, "k1", "k2")
	head := next(t, a) // a holds the lease
	if head.Key != "k1" || head.Enqueued.IsZero() {
		t.Fatalf("head %+v", head)
	}

	// While a holds the lease, b waits.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if e, err := b.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("b.Next while a holds the lease = %+v, %v", e, err)
	}

	if err := a.Retry(context.Background(), head, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Retry(context.Background(), head, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := next(t, b)
	if e.ID != head.ID || e.Attempts != 2 {
		t.Errorf("b's head %+v, want %s after 2 attempts", e, head.ID)
	}
	if err := b.Ack(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	if err := b.Ack(context.Background(), e); err != nil {
		t.Errorf("a second Ack: %v", err)
	}
	if e := next(t, b); e.Key != "k2" || e.Attempts != 0 {
		t.Errorf("next head %+v, want k2, no attempts", e)
	}
	if s := stats(t, b); s.Queued != 1 || s.Dead != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestRedisQueueFailsWhileRedisIsDownAndRecovers(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	q, err := forward.NewRedisQueue(srv.Client(), forward.RedisConfig{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := q.Push(ctx, "k", []byte(`{}`)); err == nil {
		t.Fatal("Push succeeded with Redis down: the webhook would answer 200 for nothing stored")
	}
	srv.Restart()
	if added, err := q.Push(context.Background(), "k", []byte(`{}`)); err != nil || !added {
		t.Errorf("Push after Redis came back = %v, %v", added, err)
	}
}
