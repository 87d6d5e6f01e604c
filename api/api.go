// Package api is the widget's page API (docs/contract.md "Widget page API"):
// click-to-call, do-not-disturb, department reception and recent calls,
// always acting as the user of the request's token — a manager can never
// call, or read calls, as someone else.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/guard"
	"github.com/callpop/callpop/internal/jsonhttp"
	"github.com/callpop/callpop/internal/phone"
	"github.com/callpop/callpop/pbx"
)

// PBX is what the API asks of the PBX (pbx.Client implements it).
type PBX interface {
	MakeCall(ctx context.Context, user, phone string) (string, error)
	GetDND(ctx context.Context, user string) (bool, error)
	SetDND(ctx context.Context, user string, on bool) error
	Groups(ctx context.Context, user string) ([]pbx.Group, error)
	SubscriptionStatus(ctx context.Context, user, groupID string) (string, error)
	SubscribeOnCalls(ctx context.Context, user, groupID string, on bool) error
}

var _ PBX = (*pbx.Client)(nil)

// Defaults for Config.
const (
	// DefaultRate and DefaultBurst limit each user's API requests: a person
	// clicks a few times a second at most; a runaway script is cut off.
	DefaultRate  = 5
	DefaultBurst = 20
	// DefaultCallsLimit is how many recent calls GET /api/calls returns
	// without ?limit=; MaxCallsLimit is the most it returns.
	DefaultCallsLimit = 50
	MaxCallsLimit     = event.DefaultRecentCalls
	// DefaultPBXTimeout bounds one action on the PBX.
	DefaultPBXTimeout = 10 * time.Second
	maxBody           = 4 << 10
	// maxCallID bounds one callid a request names, as the webhook bounds
	// the PBX's (webhook/validate.go).
	maxCallID = 256
)

// Config configures the API; zero values take the defaults.
type Config struct {
	Rate  rate.Limit
	Burst int
	// AllowOrigin reports whether a page at origin may call the API from
	// another origin (CORS); nil allows none.
	AllowOrigin func(origin string) bool
	// TrustedProxies are the proxies whose X-Forwarded-Proto is believed
	// when deciding a request's own origin (auth.SameOrigin).
	TrustedProxies []netip.Prefix
	PBXTimeout     time.Duration
	// Tickets issues socket tickets at POST /api/ws-ticket; nil serves none.
	Tickets Tickets
	// PBXFor, when set, is the PBX of a tenant's users (auth.Identity.Tenant
	// not ""): never the default tenant's. A tenant without a PBX gets an
	// unconfigured one (503).
	PBXFor func(tenant string) PBX
	// AllowTenantOrigin, when set, also admits a page at origin for a
	// tenant's request (its own allowed origins). Which tenant is known only
	// once the token is verified: a preflight from an origin AllowOrigin
	// does not know is answered, and the request itself is refused 403
	// after the token is checked, before anything is done.
	AllowTenantOrigin func(tenant, origin string) bool
	// TicketRate and TicketBurst limit each user's tickets, apart from Rate.
	TicketRate  rate.Limit
	TicketBurst int
}

// API serves /api/*, as routes for the node's one router (Routes).
// Requests must carry a verified identity (auth.JWT.RequireUser); OPTIONS
// preflights need none.
type API struct {
	cfg   Config
	pbx   PBX
	calls event.CallLog
	log   *zap.Logger

	limit       *guard.Limiter[string] // by user key
	ticketLimit *guard.Limiter[string] // by user key, for POST /api/ws-ticket
}

// Route is one endpoint of the API for the node's router. Path marks a
// wildcard segment as {name}; the router must set it as the request's
// PathValue(name).
type Route struct {
	Method, Path string
	Handler      http.Handler
}

type endpoint struct {
	method, path string
	handle       http.HandlerFunc
	limit        *guard.Limiter[string]
}

// New returns the API. p may be an unconfigured *pbx.Client: PBX actions
// then answer 503.
func New(cfg Config, p PBX, calls event.CallLog, log *zap.Logger) *API {
	if cfg.Rate <= 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.PBXTimeout <= 0 {
		cfg.PBXTimeout = DefaultPBXTimeout
	}
	if cfg.TicketRate <= 0 {
		cfg.TicketRate = DefaultTicketRate
	}
	if cfg.TicketBurst <= 0 {
		cfg.TicketBurst = DefaultTicketBurst
	}
	a := &API{cfg: cfg, pbx: p, calls: calls, log: log.Named("api"),
		limit:       guard.NewLimiter[string](float64(cfg.Rate), cfg.Burst),
		ticketLimit: guard.NewLimiter[string](float64(cfg.TicketRate), cfg.TicketBurst)}
	return a
}

func (a *API) endpoints() []endpoint {
	e := []endpoint{
		{http.MethodPost, "/api/call", a.call, a.limit},
		{http.MethodGet, "/api/dnd", a.getDND, a.limit},
		{http.MethodPut, "/api/dnd", a.setDND, a.limit},
		{http.MethodGet, "/api/calls", a.recentCalls, a.limit},
		{http.MethodPost, "/api/calls/seen", a.markSeen, a.limit},
		{http.MethodGet, "/api/groups", a.groups, a.limit},
		{http.MethodPut, "/api/groups/{id}", a.setGroup, a.limit},
	}
	if a.cfg.Tickets != nil {
		e = append(e, endpoint{http.MethodPost, ticketPath, a.wsTicket, a.ticketLimit})
	}
	return e
}

// Routes returns every endpoint of the API, each behind CORS, then the
// token (requireUser), then its per-user rate limit; and for each path an
// OPTIONS route answering CORS preflights.
func (a *API) Routes(requireUser func(http.Handler) http.Handler) []Route {
	var routes []Route
	paths := map[string][]string{} // path → its methods, for preflights
	var order []string
	for _, e := range a.endpoints() {
		limited := a.limited(e.limit, e.handle)
		routes = append(routes, Route{e.method, e.path, a.cors(requireUser(a.tenantOrigin(limited)))})
		if paths[e.path] == nil {
			order = append(order, e.path)
		}
		paths[e.path] = append(paths[e.path], e.method)
	}
	for _, p := range order {
		allow := strings.Join(append(paths[p], http.MethodOptions), ", ")
		routes = append(routes, Route{http.MethodOptions, p, a.cors(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Allow", allow) // an OPTIONS that is not a preflight
			w.WriteHeader(http.StatusNoContent)
		}))})
	}
	return routes
}

// cors admits a request from callpop's own origin or an allowed one (and
// answers a preflight from an allowed one); it refuses the rest with 403.
func (a *API) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !auth.SameOrigin(r, a.cfg.TrustedProxies) {
			w.Header().Add("Vary", "Origin")
			if a.cfg.AllowOrigin == nil || !a.cfg.AllowOrigin(origin) {
				if a.cfg.AllowTenantOrigin == nil {
					jsonhttp.Fail(w, jsonhttp.ErrForbidden)
					return
				}
				// Perhaps a tenant's origin: tenantOrigin decides once the
				// token names the tenant.
				r = r.WithContext(context.WithValue(r.Context(), pendingOrigin{}, origin))
			}
			w.Header().Set("Access-Control-Allow-Origin", origin)
			if r.Method == http.MethodOptions {
				w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT")
				w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				w.Header().Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

type pendingOrigin struct{}

// tenantOrigin refuses, with 403, a request whose origin cors left to the
// token's tenant when that tenant does not allow it.
func (a *API) tenantOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin, ok := r.Context().Value(pendingOrigin{}).(string); ok {
			if id := identity(r); id.Tenant == "" || !a.cfg.AllowTenantOrigin(id.Tenant, origin) {
				w.Header().Del("Access-Control-Allow-Origin")
				jsonhttp.Fail(w, jsonhttp.ErrForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limited lets a user's requests through within limit.
func (a *API) limited(limit *guard.Limiter[string], next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !limit.Allow(identity(r).Key) {
			jsonhttp.Fail(w, jsonhttp.ErrTooManyRequests)
			return
		}
		next(w, r)
	})
}

// decode reads a small JSON body into v, refusing unknown fields: a body
// that names a "user" is someone trying to act as another.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// pbxOf is the PBX of the request's tenant.
func (a *API) pbxOf(r *http.Request) PBX {
	if id := identity(r); id.Tenant != "" && a.cfg.PBXFor != nil {
		return a.cfg.PBXFor(id.Tenant)
	}
	return a.pbx
}

func identity(r *http.Request) auth.Identity {
	id, _ := auth.FromContext(r.Context())
	return id
}

type callRequest struct {
	Phone string `json:"phone"`
}

func (a *API) call(w http.ResponseWriter, r *http.Request) {
	var req callRequest
	if err := decode(r, &req); err != nil {
		jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
		return
	}
	// The PBX takes the number as dialled digits; people type it with
	// spaces, dashes and brackets.
	dial, ok := phone.Dialable(req.Phone)
	if !ok {
		jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
		return
	}
	id := identity(r)
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PBXTimeout)
	defer cancel()
	callID, err := a.pbxOf(r).MakeCall(ctx, id.User, dial)
	if err != nil {
		a.pbxError(w, "makeCall", err)
		return
	}
	a.log.Info("click-to-call", zap.String("user", id.Key), zap.String("callid", callID))
	// The PBX placed the call: 200 even without an id (pbx.Client.MakeCall
	// takes any 2xx as placed), so the widget never offers a second ring.
	out := map[string]string{}
	if callID != "" {
		out["callid"] = callID
	}
	jsonhttp.Write(w, http.StatusOK, out)
}

type dndState struct {
	State *bool `json:"state"`
}

func (a *API) getDND(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PBXTimeout)
	defer cancel()
	on, err := a.pbxOf(r).GetDND(ctx, identity(r).User)
	if err != nil {
		a.pbxError(w, "get_dnd", err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, dndState{State: &on})
}

func (a *API) setDND(w http.ResponseWriter, r *http.Request) {
	var req dndState
	if err := decode(r, &req); err != nil || req.State == nil {
		jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PBXTimeout)
	defer cancel()
	if err := a.pbxOf(r).SetDND(ctx, identity(r).User, *req.State); err != nil {
		a.pbxError(w, "set_dnd", err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, req)
}

// groupState is one department and whether the user takes its calls.
type groupState struct {
	ID       string `json:"id"`
	RealName string `json:"realName,omitempty"`
	Status   string `json:"status"` // "on" | "off"
}

func (a *API) groups(w http.ResponseWriter, r *http.Request) {
	user := identity(r).User
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PBXTimeout)
	defer cancel()
	gs, err := a.pbxOf(r).Groups(ctx, user)
	if err != nil {
		a.pbxError(w, "groups", err)
		return
	}
	out := make([]groupState, 0, len(gs))
	for _, g := range gs {
		st, err := a.pbxOf(r).SubscriptionStatus(ctx, user, g.ID)
		if err != nil {
			a.pbxError(w, "subscriptionStatus", err)
			return
		}
		out = append(out, groupState{ID: g.ID, RealName: g.RealName, Status: st})
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"groups": out})
}

func (a *API) setGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Status string `json:"status"`
	}
	groupID := r.PathValue("id")
	if err := decode(r, &req); err != nil || (req.Status != "on" && req.Status != "off") || groupID == "" {
		jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), a.cfg.PBXTimeout)
	defer cancel()
	// Always with group_id: reception is switched for this department only.
	if err := a.pbxOf(r).SubscribeOnCalls(ctx, identity(r).User, groupID, req.Status == "on"); err != nil {
		a.pbxError(w, "subscribeOnCalls", err)
		return
	}
	jsonhttp.Write(w, http.StatusOK, groupState{ID: groupID, Status: req.Status})
}

func (a *API) recentCalls(w http.ResponseWriter, r *http.Request) {
	limit := DefaultCallsLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
			return
		}
		limit = min(n, MaxCallsLimit)
	}
	recs, err := a.calls.RecentCalls(r.Context(), identity(r).Key, limit)
	if err != nil {
		a.log.Warn("recent calls unavailable", zap.Error(err))
		jsonhttp.Fail(w, jsonhttp.ErrUnavailable)
		return
	}
	unseen := 0
	for _, rec := range recs {
		if rec.Missed() && !rec.Seen {
			unseen++
		}
	}
	jsonhttp.Write(w, http.StatusOK, map[string]any{"calls": recs, "unseen_missed": unseen})
}

// markSeen marks missed calls seen, kept on the server so every tab and
// device agrees: {"callids":["…"]} or {"all":true}. Only the user's own
// recent missed calls can change (the broker checks each id against them),
// and "marked" counts those that did.
func (a *API) markSeen(w http.ResponseWriter, r *http.Request) {
	var req struct {
		CallIDs []string `json:"callids"`
		All     bool     `json:"all"`
	}
	// No more ids than a user's recent calls hold, each no longer than a
	// callid the webhook accepts: bounded work per request.
	if err := decode(r, &req); err != nil || (len(req.CallIDs) == 0 && !req.All) || len(req.CallIDs) > MaxCallsLimit {
		jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
		return
	}
	for _, id := range req.CallIDs {
		if id == "" || len(id) > maxCallID {
			jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
			return
		}
	}
	user := identity(r).Key
	if req.All {
		recs, err := a.calls.RecentCalls(r.Context(), user, MaxCallsLimit)
		if err != nil {
			a.log.Warn("recent calls unavailable", zap.Error(err))
			jsonhttp.Fail(w, jsonhttp.ErrUnavailable)
			return
		}
		for _, rec := range recs {
			if rec.UnseenMissed() {
				req.CallIDs = append(req.CallIDs, rec.CallID)
			}
		}
	}
	marked, err := a.calls.MarkSeen(r.Context(), user, req.CallIDs)
	if err != nil {
		a.log.Warn("mark seen failed", zap.Error(err))
		jsonhttp.Fail(w, jsonhttp.ErrUnavailable)
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]int{"marked": marked})
}

// pbxError answers a failed PBX action: 503 when the PBX is not configured
// or cannot be reached, 502 carrying the PBX's own error when it refused.
func (a *API) pbxError(w http.ResponseWriter, cmd string, err error) {
	var pe *pbx.Error
	switch {
	case errors.Is(err, pbx.ErrNotConfigured):
		jsonhttp.Fail(w, jsonhttp.ErrPBXNotConfigured)
		return
	case errors.Is(err, pbx.ErrUnavailable):
	case errors.As(err, &pe):
		a.log.Warn("PBX refused", zap.String("cmd", cmd), zap.Int("status", pe.Status), zap.String("pbx_error", pe.Message))
		jsonhttp.Fail(w, jsonhttp.PBXRefused(pe.Message, pe.Status))
		return
	case errors.Is(err, pbx.ErrInvalidParameters):
		jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
		return
	}
	a.log.Warn("PBX unavailable", zap.String("cmd", cmd), zap.Error(err))
	jsonhttp.Fail(w, jsonhttp.ErrPBXUnavailable)
}
