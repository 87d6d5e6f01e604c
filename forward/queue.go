package forward

import (
	"context"
	"errors"
	"time"
)

// DefaultDedupeWindow is how long a key, once pushed, keeps the same key from
// being queued again: call records (event.DefaultRecordTTL) are kept as long,
// and the PBX's repeats come within seconds.
const DefaultDedupeWindow = 24 * time.Hour

// ErrClosed is returned by a queue's methods after Close.
var ErrClosed = errors.New("forward: queue closed")

// Entry is one queued record as the consumer sees it.
type Entry struct {
	// ID is assigned by the queue on Push, unique within it, and names the
	// entry to Ack, Retry and Bury.
	ID string
	// Key is the deduplication key given to Push (Key(record)).
	Key string
	// Data is the body to send (the Item's JSON).
	Data []byte
	// Enqueued is when Push stored the entry.
	Enqueued time.Time
	// Attempts counts the failed deliveries recorded with Retry.
	Attempts int
}

// Stats describes a queue at one moment.
type Stats struct {
	Queued int       // entries waiting, the one being sent included
	Oldest time.Time // when the oldest waiting entry was pushed; zero when none
	Dead   int       // entries in the dead letters
}

// Queue is a durable FIFO of records waiting for the CRM, with at-least-once
// hand-out: an entry stays at the head, and is handed out again (after a
// restart, or to another node), until the consumer acknowledges or buries it.
//
// Delivery order is the order of Push. Push may be called from any goroutine
// and any node; Next, Ack, Retry and Bury by the queue's one consumer
// (Forwarder.Run). Every method that changes the queue has made the change
// durable when it returns nil.
type Queue interface {
	// Push appends data, under key, unless the same key was pushed within
	// the queue's dedupe window; added reports which. It is durable when it
	// returns nil, and a failed Push leaves no trace: neither the entry nor
	// the key's dedupe mark.
	Push(ctx context.Context, key string, data []byte) (added bool, err error)
	// Next blocks until the oldest entry is due — its Retry time, if any,
	// has passed, and this consumer may send it — and returns it without
	// removing it. It returns ctx.Err() when ctx ends.
	Next(ctx context.Context) (Entry, error)
	// Ack removes a delivered entry. Acknowledging an entry no longer in the
	// queue is not an error.
	Ack(ctx context.Context, e Entry) error
	// Retry records one more failed attempt on e and holds it back until at;
	// entries behind it wait too (order of arrival is kept).
	Retry(ctx context.Context, e Entry, at time.Time) error
	// Bury moves e to the dead letters with reason: the CRM rejected it for
	// good, so it is not sent again.
	Bury(ctx context.Context, e Entry, reason string) error
	// Stats reports the queue's length, oldest entry and dead letters.
	Stats(ctx context.Context) (Stats, error)
}

// Releaser is a Queue that can hand its turn to consume to another node at
// once (RedisQueue's lease) instead of when the turn expires. Forwarder.Run
// calls Release when it returns.
type Releaser interface {
	Release(ctx context.Context) error
}
