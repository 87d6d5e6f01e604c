package redis_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/redistest"
)

// TestClusterOutboxLivesOutboxTTL: a call's outbox is kept OutboxTTL, its
// record RecordTTL.
func TestClusterOutboxLivesOutboxTTL(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	const outboxTTL = 90 * time.Second
	a, rdb := newClusterNode(t, c.URL(), redis.Config{OutboxTTL: outboxTTL})
	a.Register(func(event.Message) {})
	if err := ring(a, "call-1", "andy", event.Incoming); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	outbox, err := rdb.TTL(ctx, redis.DefaultPrefix+"outbox:{call-1}").Result()
	if err != nil || outbox <= 0 || outbox > outboxTTL {
		t.Fatalf("outbox TTL %v, %v; want in (0, %v]", outbox, err, outboxTTL)
	}
	record, err := rdb.TTL(ctx, redis.DefaultPrefix+"call:{call-1}").Result()
	if err != nil || record <= event.DefaultRecordTTL-time.Minute || record > event.DefaultRecordTTL {
		t.Fatalf("record TTL %v, %v; want about %v", record, err, event.DefaultRecordTTL)
	}
}

// TestClusterUpdateAfterTheOutboxExpired: the call's next webhook after its
// outbox expired starts a fresh version, which the users' keys still take:
// every frame arrives once and in order, a repeated webhook (a PBX's retry,
// which flushes the outbox) sends nothing again, and the history record
// lands in the recent calls.
func TestClusterUpdateAfterTheOutboxExpired(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t)
	cfg := redis.Config{OutboxTTL: time.Second}
	a, rdb := newClusterNode(t, c.URL(), cfg)
	b, _ := newClusterNode(t, c.URL(), cfg)
	a.Register(func(event.Message) {})
	const user = "andy"
	var mu sync.Mutex
	var got []string // user's frames on b (event, or frame type), in the order b took them
	var last event.ID
	b.Register(func(m event.Message) {
		var f event.CallFrame
		if m.Resync || json.Unmarshal(m.Data, &f) != nil || f.CallID != "call-1" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !last.Less(m.ID) {
			t.Errorf("frame %s came after %s", m.ID, last)
		}
		last = m.ID
		if f.Type == event.FrameCall {
			got = append(got, string(f.Event))
		} else {
			got = append(got, f.Type)
		}
	})
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Subscribe(sctx, user); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	outboxKey := redis.DefaultPrefix + "outbox:{call-1}"
	var want []string
	// Both nodes commit, so each commit starts from a record read back from
	// Redis at least once (the compare-and-set fails on the other's).
	steps := []struct {
		node *redis.Broker
		ev   event.Type
	}{{a, event.Incoming}, {b, event.Accepted}, {a, event.Completed}}
	for _, s := range steps {
		// The outbox of the previous commit expires first (1 s; EXISTS
		// expires it lazily once its time passed).
		waitUntil(t, 10*time.Second, "the outbox to expire", func() bool {
			n, err := rdb.Exists(ctx, outboxKey).Result()
			return err == nil && n == 0
		})
		if err := ring(s.node, "call-1", user, s.ev); err != nil {
			t.Fatalf("%s: %v", s.ev, err)
		}
		// The PBX's retry of the same webhook: nothing changes, nothing is
		// sent again.
		if err := ring(s.node, "call-1", user, s.ev); err != nil {
			t.Fatalf("%s again: %v", s.ev, err)
		}
		want = append(want, string(s.ev))
		waitUntil(t, 10*time.Second, string(s.ev)+" on b", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(got) >= len(want)
		})
	}
	// The call's history record, once more after the outbox expired: a
	// history frame and the recent call.
	waitUntil(t, 10*time.Second, "the outbox to expire", func() bool {
		n, err := rdb.Exists(ctx, outboxKey).Result()
		return err == nil && n == 0
	})
	rec := event.Record{CallID: "call-1", User: user, Phone: "79101234567", Direction: event.DirIn, Status: event.Success, Start: time.Now()}
	for range 2 {
		if err := b.Update(ctx, "call-1", func(r *event.CallState) []event.Out { return r.ApplyHistory(rec, time.Now()) }); err != nil {
			t.Fatal(err)
		}
	}
	want = append(want, event.FrameHistory)
	waitUntil(t, 10*time.Second, "the history frame on b", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= len(want)
	})
	// The log and the recent calls agree: once each, in order, answered.
	if ids := b.LogCallIDs(t, user); !slices.Equal(ids, []string{"call-1", "call-1", "call-1", "call-1"}) {
		t.Errorf("log holds %v; want the four frames of call-1", ids)
	}
	recs, err := b.RecentCalls(ctx, user, 10)
	if err != nil || len(recs) != 1 || recs[0].CallID != "call-1" || recs[0].Status != event.Success {
		t.Errorf("recent calls %+v, %v; want call-1, answered", recs, err)
	}
	snap, err := b.Snapshot(ctx, user, event.ID{})
	if err != nil || len(snap.Active) != 0 {
		t.Errorf("active calls after the hang-up %+v, %v; want none", snap.Active, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("b took %v; want %v", got, want)
	}
}

// newClusterNode is a broker on its own cluster client, as cmd/callpop
// builds one, and a client for looking at the keys.
func newClusterNode(t *testing.T, url string, cfg redis.Config) (*redis.Broker, goredis.UniversalClient) {
	t.Helper()
	rdb, err := redis.NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	b := redis.New(rdb, cfg, zaptest.NewLogger(t))
	t.Cleanup(func() { b.Close(); rdb.Close() })
	return b, rdb
}

// ring sends user's event ev of callID through node n.
func ring(n *redis.Broker, callID, user string, ev event.Type) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e := event.Event{Type: ev, CallID: callID, User: user, Phone: "79101234567", Direction: event.DirIn, At: time.Now()}
	return n.Update(ctx, callID, func(r *event.CallState) []event.Out { return r.ApplyEvent(e) })
}
