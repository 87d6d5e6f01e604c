package memory

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/callpop/callpop/event"
)

// MaxTickets bounds the socket tickets held at once. Each is issued to a
// verified user under a per-user rate limit and lives ~30 s, so a node meets
// this only under an attack from many valid tokens; it then refuses new ones
// (503) rather than grow.
const MaxTickets = 100_000

// tickets is the embedded broker's event.Tickets, shared by every node.
type tickets struct {
	mu    sync.Mutex
	byID  map[string]ticket
	queue []ticketExpiry // in the order they were put: swept from the head
	head  int
}

type ticket struct {
	value   []byte
	expires time.Time
}

type ticketExpiry struct {
	id      string
	expires time.Time
}

var errTicketsFull = fmt.Errorf("%w: memory: too many socket tickets", event.ErrUnavailable)

// PutTicket implements event.Tickets.
func (b *Broker) PutTicket(_ context.Context, id string, value []byte, ttl time.Duration) error {
	t := &b.s.tickets
	now := b.s.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	if t.byID == nil {
		t.byID = map[string]ticket{}
	}
	if _, dup := t.byID[id]; dup {
		return errors.New("memory: ticket id in use")
	}
	if len(t.byID) >= MaxTickets {
		return errTicketsFull
	}
	exp := now.Add(ttl)
	t.byID[id] = ticket{value: value, expires: exp}
	t.queue = append(t.queue, ticketExpiry{id, exp})
	return nil
}

// TakeTicket implements event.Tickets.
func (b *Broker) TakeTicket(_ context.Context, id string) ([]byte, error) {
	t := &b.s.tickets
	now := b.s.cfg.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	tk, ok := t.byID[id]
	if !ok || now.After(tk.expires) {
		return nil, event.ErrNoTicket
	}
	delete(t.byID, id)
	return tk.value, nil
}

// sweep drops the expired tickets at the head of the queue (and the queue
// entries of tickets taken already). Tickets share one TTL in practice, so
// the queue is in expiry order; one with a longer TTL only delays the sweep of
// those behind it, and MaxTickets still bounds them. Guarded by mu.
func (t *tickets) sweep(now time.Time) {
	for t.head < len(t.queue) && now.After(t.queue[t.head].expires) {
		e := t.queue[t.head]
		if tk, ok := t.byID[e.id]; ok && tk.expires.Equal(e.expires) {
			delete(t.byID, e.id)
		}
		t.queue[t.head] = ticketExpiry{}
		t.head++
	}
	if t.head > 0 && t.head*2 >= len(t.queue) { // reuse the array once half is swept
		n := copy(t.queue, t.queue[t.head:])
		clear(t.queue[n:])
		t.queue = t.queue[:n]
		t.head = 0
	}
}
