package event

import (
	"context"
	"errors"
	"time"
)

// Tickets keeps single-use socket tickets. A node issues one for a verified
// widget token (POST /api/ws-ticket) and any node of the cluster redeems it,
// once, when the socket opens (GET /ws?ticket=…): the long-lived token never
// travels in a URL, where proxies and access logs would keep it.
type Tickets interface {
	// PutTicket stores value under id for ttl. An id already stored is an
	// error (ids are random: a clash means a bug, never an overwrite).
	PutTicket(ctx context.Context, id string, value []byte, ttl time.Duration) error
	// TakeTicket returns the value stored under id and deletes it in the same
	// step, so a ticket opens one socket at most. ErrNoTicket when there is
	// none: never issued, taken already, or expired.
	TakeTicket(ctx context.Context, id string) ([]byte, error)
}

// ErrNoTicket is returned by TakeTicket for an id it does not hold.
var ErrNoTicket = errors.New("event: no such ticket")
