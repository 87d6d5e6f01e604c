package api

import (
	"context"
	"errors"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/jsonhttp"
)

// Tickets issues socket tickets (auth.Tickets implements it).
type Tickets interface {
	Issue(ctx context.Context, id auth.Identity) (string, error)
	TTL() time.Duration
}

var _ Tickets = (*auth.Tickets)(nil)

const ticketPath = "/api/ws-ticket"

// Defaults for the ticket limit, apart from the API's: after a node restarts
// every tab of a user asks for a ticket at once, and a user may hold
// DefaultMaxSessionsPerUser (32) sockets; a steady rate of a few a second
// still covers tabs reconnecting with back-off. Each ticket lives
// auth.DefaultTicketTTL, so one user holds at most burst + rate×TTL of them.
const (
	DefaultTicketRate  = 2
	DefaultTicketBurst = 40
)

// wsTicket trades the request's token for a single-use socket ticket:
// {"ticket":"…","expires_in":30}. The widget opens /ws?ticket=… with it, so
// the token itself never appears in a URL.
func (a *API) wsTicket(w http.ResponseWriter, r *http.Request) {
	ticket, err := a.cfg.Tickets.Issue(r.Context(), identity(r))
	if err != nil {
		if !errors.Is(err, event.ErrUnavailable) {
			a.log.Error("socket ticket not issued", zap.Error(err))
		}
		jsonhttp.Fail(w, jsonhttp.ErrUnavailable)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	jsonhttp.Write(w, http.StatusOK, map[string]any{
		"ticket": ticket, "expires_in": int(a.cfg.Tickets.TTL() / time.Second),
	})
}
