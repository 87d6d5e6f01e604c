package event

import (
	"context"
	"errors"
)

// Message is one frame for one user as a node receives it from the broker.
type Message struct {
	UserKey string // user key
	ID      ID
	Data    []byte // the encoded frame, id included
	// Resync, with no Data: the node's subscription for User was
	// re-established (after a Redis restart or a dropped connection), so
	// live frames may have been missed; sessions should catch up from the
	// log.
	Resync bool
}

// Handler receives the messages for the users a node subscribed to. It is
// called from the broker's receiving goroutine and must not block.
type Handler func(Message)

// UpdateFunc changes a call's record and returns what to send. A broker may
// run it more than once (optimistic concurrency), so it must be pure.
type UpdateFunc func(rec *CallState) []Out

// Publisher is what the webhook side needs: apply a change to a call and
// deliver its consequences to every node.
type Publisher interface {
	// Update applies fn to the record of callID and, atomically with storing
	// the new record, appends each Out's frame to its user's log, updates the
	// user's active calls and recent calls, and publishes the frame. It
	// blocks until the change is durable in the broker.
	Update(ctx context.Context, callID string, fn UpdateFunc) error
}

// Snapshot is what a new session starts from.
type Snapshot struct {
	Active []CallFrame // the user's open calls, oldest first
	Last   ID          // newest event in the user's log (zero when none)
	// Missed holds the events after the session's since, oldest first, when
	// Recovered.
	Missed []Message
	// Recovered: since was given and is still in the retained log, so
	// Missed is complete.
	Recovered bool
}

// Subscriber is what the hub needs: live messages for the users it has
// sessions for, and the state to greet a session with.
type Subscriber interface {
	// Register sets the handler for incoming messages. Call it once, before
	// the first Subscribe.
	Register(h Handler)
	// Subscribe makes this node receive user's messages and blocks until it
	// does. Calls are counted: each needs its Unsubscribe.
	Subscribe(ctx context.Context, user string) error
	// Unsubscribe undoes one Subscribe.
	Unsubscribe(ctx context.Context, user string) error
	// Snapshot reads user's active calls and newest id and, when since is
	// not zero, the events after it.
	Snapshot(ctx context.Context, user string, since ID) (Snapshot, error)
}

// CallLog is what the page API needs: a user's recent calls.
type CallLog interface {
	// RecentCalls returns up to limit of user's call records, newest first.
	RecentCalls(ctx context.Context, user string, limit int) ([]Record, error)
	// MarkSeen marks callIDs seen for user and returns how many changed.
	// Only a call in user's recent calls that is missed and not yet seen
	// changes: its record there is marked, the call's shared record (while
	// it is kept) remembers it, and a "seen" frame goes to user's log and
	// tabs, atomically per call. Any other id (unknown, another user's,
	// not missed, already seen) changes nothing and stores nothing, so a
	// client naming ids cannot grow the broker. Repeated ids count once.
	MarkSeen(ctx context.Context, user string, callIDs []string) (int, error)
}

// Broker is one backend, embedded or Redis, serving all three sides.
type Broker interface {
	Publisher
	Subscriber
	CallLog
	Tickets
	// Ready reports whether the backend is reachable now.
	Ready(ctx context.Context) error
	// Close releases the broker's connections and goroutines.
	Close() error
}

// Retention of each user's event log.
const (
	// DefaultLogSize is how many events a user's log keeps for resume: a
	// busy manager takes a few hundred calls a day, five frames each.
	DefaultLogSize = 1000
	// DefaultRecentCalls is how many records a user's recent calls keep.
	DefaultRecentCalls = 200
)

// ErrUnavailable wraps a broker failure the caller may retry later.
var ErrUnavailable = errors.New("event: broker unavailable")
