package redis

import (
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
	fn   event.UpdateFunc
	done chan error // buffered: the batch's result
}

// do queues fn for callID and returns the result of the batch that applied
// it; apply commits one batch.
func (c *combiner) do(callID string, fn event.UpdateFunc, apply func(callID string, batch []*update) error) error {
	u := &update{fn: fn, done: make(chan error, 1)}
	c.mu.Lock()
	if c.calls == nil {
		c.calls = map[string]*[]*update{}
	}
	if q, busy := c.calls[callID]; busy {
		*q = append(*q, u)
		c.mu.Unlock()
		return <-u.done
	}
	c.calls[callID] = new([]*update)
	c.mu.Unlock()
	c.serve(callID, []*update{u}, apply)
	return <-u.done
}

// serve commits batch, answers it, and hands what queued meanwhile to a
// goroutine of its own, so the caller that led this batch answers now.
func (c *combiner) serve(callID string, batch []*update, apply func(string, []*update) error) {
	err := apply(callID, batch)
	c.mu.Lock()
	q := c.calls[callID]
	next := *q
	*q = nil
	if len(next) == 0 {
		delete(c.calls, callID)
	}
	c.mu.Unlock()
	for _, u := range batch {
		u.done <- err
	}
	if len(next) > 0 {
		go c.serve(callID, next, apply)
	}
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
	rec *event.CallRecord // nil once taken
}

func newRecordCache(max int) *recordCache {
	return &recordCache{max: max, m: make(map[string]cachedRecord), order: make([]string, max)}
}

// take returns the call's record as stored and, unless another update took
// it, decoded: the decoded one is the caller's to change (the combiner runs
// one batch per call at a time), so it is handed out once.
func (c *recordCache) take(callID string) ([]byte, *event.CallRecord) {
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

func (c *recordCache) put(callID string, raw []byte, rec *event.CallRecord) {
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
