package brokertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/callpop/callpop/event"
)

// testTickets: a ticket put on one node is taken once, on any node, and
// disappears by itself after its TTL.
func testTickets(t *testing.T, newBrokers Factory) {
	a, b := newBrokers(t, Options{})
	ctx := context.Background()
	if err := a.PutTicket(ctx, "t1", []byte("andy"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := b.PutTicket(ctx, "t1", []byte("mike"), time.Minute); err == nil {
		t.Error("a second PutTicket of one id succeeded: a ticket must never be overwritten")
	}
	v, err := b.TakeTicket(ctx, "t1")
	if err != nil || string(v) != "andy" {
		t.Fatalf("TakeTicket on the other node = %q, %v; want andy", v, err)
	}
	for _, n := range []event.Broker{a, b} {
		if _, err := n.TakeTicket(ctx, "t1"); !errors.Is(err, event.ErrNoTicket) {
			t.Errorf("second TakeTicket = %v, want ErrNoTicket", err)
		}
	}
	if _, err := a.TakeTicket(ctx, "never"); !errors.Is(err, event.ErrNoTicket) {
		t.Errorf("TakeTicket(never issued) = %v, want ErrNoTicket", err)
	}
	// Expiry is the backend's own (Redis's TTL): wait it out.
	if err := a.PutTicket(ctx, "short", []byte("andy"), 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := b.TakeTicket(ctx, "short"); !errors.Is(err, event.ErrNoTicket) {
		t.Errorf("TakeTicket 200 ms after a 50 ms TTL = %v, want ErrNoTicket", err)
	}
}
