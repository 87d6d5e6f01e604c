package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/jsonhttp"
	"github.com/callpop/callpop/tenant"
)

// DefaultTicketTTL is how long a socket ticket may wait to be redeemed: the
// widget opens its socket right after fetching one, so a few seconds would
// do; 30 s leaves room for a slow network and a loaded node.
const DefaultTicketTTL = 30 * time.Second

// ticketLen is a ticket's size in random bytes: 256 bits, like the token it
// stands in for.
const ticketLen = 32

// Tickets issues and redeems single-use socket tickets (docs/contract.md
// "Browser ↔ callpop"). A ticket stands for a verified identity for one
// socket: the widget trades its long-lived token for one over a POST, with
// the token in a header, and puts only the ticket in the socket's URL. The
// store is the broker's, so any node redeems what another issued.
type Tickets struct {
	store event.Tickets
	ttl   time.Duration
	now   func() time.Time
}

// NewTickets returns Tickets kept in store for ttl (0: DefaultTicketTTL).
func NewTickets(store event.Tickets, ttl time.Duration) *Tickets {
	if ttl <= 0 {
		ttl = DefaultTicketTTL
	}
	return &Tickets{store: store, ttl: ttl, now: time.Now}
}

// TTL is how long an issued ticket stays redeemable.
func (t *Tickets) TTL() time.Duration { return t.ttl }

type ticketValue struct {
	User    string `json:"u"`
	Tenant  string `json:"t,omitempty"`
	Expires int64  `json:"e"` // the token's exp, unix milliseconds: the socket ends then
}

// Issue returns a new ticket for id. It fails with event.ErrUnavailable
// (wrapped) when the store cannot keep it.
func (t *Tickets) Issue(ctx context.Context, id Identity) (string, error) {
	var raw [ticketLen]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("auth: ticket: %w", err)
	}
	ticket := base64.RawURLEncoding.EncodeToString(raw[:])
	v, err := json.Marshal(ticketValue{User: id.User, Tenant: id.Tenant, Expires: id.Expires.UnixMilli()})
	if err != nil {
		return "", err
	}
	if err := t.store.PutTicket(ctx, storeID(ticket), v, t.ttl); err != nil {
		return "", fmt.Errorf("auth: ticket: %w", err)
	}
	return ticket, nil
}

// Redeem returns the identity ticket was issued for and makes the ticket
// unusable. ErrBadToken when there is no such ticket (never issued, used,
// expired) or the token it stood for has expired since; a store failure is
// returned as it is (event.ErrUnavailable).
func (t *Tickets) Redeem(ctx context.Context, ticket string) (Identity, error) {
	if len(ticket) != base64.RawURLEncoding.EncodedLen(ticketLen) {
		return Identity{}, fmt.Errorf("%w: malformed ticket", ErrBadToken)
	}
	raw, err := t.store.TakeTicket(ctx, storeID(ticket))
	if errors.Is(err, event.ErrNoTicket) {
		return Identity{}, fmt.Errorf("%w: unknown ticket", ErrBadToken)
	}
	if err != nil {
		return Identity{}, err
	}
	var v ticketValue
	if err := json.Unmarshal(raw, &v); err != nil {
		return Identity{}, fmt.Errorf("%w: stored ticket: %w", ErrBadToken, err)
	}
	exp := time.UnixMilli(v.Expires)
	key, err := subjectKey(v.User)
	if err != nil {
		return Identity{}, err
	}
	if !t.now().Before(exp) {
		return Identity{}, fmt.Errorf("%w: ticket's token expired", ErrBadToken)
	}
	return Identity{User: v.User, Key: tenant.Key(v.Tenant, key), Tenant: v.Tenant, Expires: exp}, nil
}

// storeID is what the store keeps a ticket under: its hash, so the store
// (a Redis anyone with access can MONITOR) never holds a redeemable ticket.
func storeID(ticket string) string {
	h := sha256.Sum256([]byte(ticket))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// SocketOptions are RequireSocketUser's optional hooks.
type SocketOptions struct {
	// Legacy, when set, also accepts the token in the "token" query
	// parameter, as widgets before tickets sent it, and is called for each
	// such request so operators see when none are left.
	Legacy func()
	// Refused, when set, is told of every refused request and why: "ticket"
	// (unknown, used, expired) or "token" (missing, bad, expired).
	Refused func(r *http.Request, reason string)
}

// RequireSocketUser authenticates a WebSocket upgrade, which a browser cannot
// give an Authorization header: by a single-use ticket in the "ticket" query
// parameter (the widget's way), or by a token in the Authorization header
// (clients that can set one), or, with o.Legacy, in the "token" parameter.
// Refused requests are answered 401 JSON before any upgrade; a store failure
// 503.
func RequireSocketUser(j Verifier, t *Tickets, o SocketOptions, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var id Identity
		var err error
		reason := "token"
		switch {
		case q.Has("ticket"):
			reason = "ticket"
			id, err = t.Redeem(r.Context(), q.Get("ticket"))
		case BearerToken(r) != "":
			id, err = j.Verify(BearerToken(r))
		case o.Legacy != nil && q.Has("token"):
			o.Legacy()
			id, err = j.Verify(q.Get("token"))
		default:
			err = ErrBadToken
		}
		switch {
		case errors.Is(err, event.ErrUnavailable):
			jsonhttp.Fail(w, jsonhttp.ErrUnavailable)
			return
		case err != nil:
			if o.Refused != nil {
				o.Refused(r, reason)
			}
			jsonhttp.Fail(w, jsonhttp.ErrInvalidToken)
			return
		}
		next.ServeHTTP(w, r.WithContext(WithIdentity(r.Context(), id)))
	})
}
