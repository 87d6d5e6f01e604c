package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/callpop/callpop/event"
)

// ticketKey is a socket ticket's key: one key per ticket, so it lives on one
// hash slot of a Redis Cluster on its own.
func (b *Broker) ticketKey(id string) string { return b.key("t", id) }

// PutTicket implements event.Tickets with SET NX PX: the TTL is Redis's, so
// an unredeemed ticket disappears by itself on every node at once.
func (b *Broker) PutTicket(ctx context.Context, id string, value []byte, ttl time.Duration) error {
	ok, err := b.rdb.SetNX(ctx, b.ticketKey(id), value, ttl).Result()
	if err != nil {
		return fmt.Errorf("%w: %w", event.ErrUnavailable, err)
	}
	if !ok {
		return errors.New("redis: ticket id in use")
	}
	return nil
}

// TakeTicket implements event.Tickets with GETDEL (Redis 6.2): reading and
// deleting in one command, so two nodes can never both redeem one ticket.
func (b *Broker) TakeTicket(ctx context.Context, id string) ([]byte, error) {
	v, err := b.rdb.GetDel(ctx, b.ticketKey(id)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, event.ErrNoTicket
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", event.ErrUnavailable, err)
	}
	return v, nil
}
