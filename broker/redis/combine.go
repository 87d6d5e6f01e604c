package redis

import (
	"context"
	"fmt"
	"sync"

	"github.com/callpop/callpop/event"
)

// combiner runs this node's updates of one call one batch at a time: while a
// batch is being committed, updates of the same call queue up, and the next
// batch applies them all to the record in arrival order and commits once. A
// group call's twenty INCOMING webhooks thus cost a couple of commits instead
// of twenty round trips in a row. The zero value is ready.
type combiner struct {
	mu    sync.Mutex
	calls map[string]*[]*update // queued behind the batch in flight; guarded by mu
}

type update struct {
	ctx  context.Context
	fn   event.UpdateFunc
	done chan error // buffered: the batch's result
}

// do queues fn for callID and returns the result of the batch that applied
// it; apply commits one batch.
//
// ctx bounds the wait for a turn: an update whose ctx ends while it queues
// behind another batch of its call is never applied, and do returns at once.
// A commit under way is finished (abandoned half-way, its record and frames
// could part), so a caller that leads a batch waits for it; one whose ctx
// ends while its batch commits returns at once, and its update may have been
// applied — the webhook answers 503, the PBX repeats it, and a repeat is
// applied once.
func (c *combiner) do(ctx context.Context, callID string, fn event.UpdateFunc, apply func(callID string, batch []*update) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", event.ErrUnavailable, err)
	}
	u := &update{ctx: ctx, fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]*[]*update{}
	}
	if q, busy := c.calls[callID]; busy {
		*q = append(*q, u)
		c.mu.Unlock()
		select {
		case err := <-u.done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", event.ErrUnavailable, ctx.Err())
		}
	}
	c.calls[callID] = new([]*update)
	c.mu.Unlock()
	// The leader commits its own batch in its goroutine (no hand-off on the
	// common path: one webhook, no queue) and hands what queued meanwhile to
	// a goroutine of its own.
	if next := c.commit(callID, []*update{u}, apply); len(next) > 0 {
		go c.serve(callID, next, apply)
	}
	return <-u.done
}

// serve commits batch after batch of callID until none is queued.
func (c *combiner) serve(callID string, batch []*update, apply func(string, []*update) error) {
	for len(batch) > 0 {
		batch = c.commit(callID, batch, apply)
	}
}

// commit applies batch, less the updates whose callers gave up, answers
// them, and returns what queued meanwhile (nil: the call is free again).
func (c *combiner) commit(callID string, batch []*update, apply func(string, []*update) error) []*update {
	live := batch // the common case: every caller still waits
	for i, u := range batch {
		if u.ctx.Err() != nil {
			live = append(batch[:i:i], liveOnly(batch[i:])...)
			break
		}
	}
	var err error
	if len(live) > 0 {
		err = apply(callID, live)
	}
	c.mu.Lock()
	q := c.calls[callID]
	next := *q
	*q = nil
	if len(next) == 0 {
		delete(c.calls, callID)
	}
	c.mu.Unlock()
	for _, u := range live {
		u.done <- err
	}
	return next
}

// liveOnly answers the updates whose callers gave up and returns the rest.
func liveOnly(batch []*update) []*update {
	var live []*update
	for _, u := range batch {
		if err := u.ctx.Err(); err != nil {
			u.done <- err // buffered; its caller has gone
			continue
		}
		live = append(live, u)
	}
	return live
}

// recordCache remembers the last record this node committed for a call, as
// stored and decoded, so the next update of the call neither reads nor
// decodes it: the commit's compare-and-set catches a stale entry and returns
// the current record. It holds at most max entries, forgetting the oldest.
type recordCache struct {
	mu    sync.Mutex
	max   int
	m     map[string]cachedRecord // guarded by mu
	order []string                // insertion order, a ring; guarded by mu
	next  int                     // guarded by mu
}

type cachedRecord struct {
	raw []byte
	rec *event.CallState // nil once taken
}

func newRecordCache(max int) *recordCache {
	return &recordCache{max: max, m: make(map[string]cachedRecord), order: make([]string, max)}
}

// take returns the call's record as stored and, unless another update took
// it, decoded: the decoded one is the caller's to change (the combiner runs
// one batch per call at a time), so it is handed out once.
func (c *recordCache) take(callID string) ([]byte, *event.CallState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[callID]
	if !ok {
		return nil, nil
	}
	if e.rec != nil {
		c.m[callID] = cachedRecord{raw: e.raw}
	}
	return e.raw, e.rec
}

func (c *recordCache) put(callID string, raw []byte, rec *event.CallState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[callID]; !ok {
		if old := c.order[c.next]; old != "" {
			delete(c.m, old)
		}
		c.order[c.next] = callID
		c.next = (c.next + 1) % c.max
	}
	c.m[callID] = cachedRecord{raw: raw, rec: rec}
}
