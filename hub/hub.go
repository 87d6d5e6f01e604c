// Package hub holds the browsers' WebSocket sessions, keyed by PBX user, and
// delivers each user's frames to all of that user's sessions on this node. It
// consumes an event.Subscriber and never blocks it: every session has a
// bounded queue, and a session that falls behind is closed, not waited for.
package hub

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/hub/transport"
	"github.com/callpop/callpop/internal/jsonhttp"
	"github.com/callpop/callpop/tenant"
)

// Defaults for Config.
const (
	// DefaultQueueSize frames may wait for one session. A manager gets a few
	// frames a minute; 64 in flight means the browser stopped reading.
	DefaultQueueSize = 64
	// DefaultPingInterval keeps idle sockets alive through proxies (nginx's
	// default proxy_read_timeout is 60 s) and finds dead peers.
	DefaultPingInterval = 25 * time.Second
	// DefaultWriteTimeout bounds a socket write (to between 3/4 of it and all
	// of it; see transport.Server), the close handshake and the wait for a
	// pong.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultHelloTimeout bounds subscribing and reading the snapshot.
	DefaultHelloTimeout = 10 * time.Second
	// DefaultMaxSessionsPerUser caps tabs and devices of one user per node.
	DefaultMaxSessionsPerUser = 32
	// DefaultReadLimit caps an inbound frame; clients only send small acks.
	DefaultReadLimit = 1024
	// DefaultInboundRate and DefaultInboundBurst bound the frames one session
	// may send, whatever they are (acks, pongs, pings): DefaultInboundRate a
	// second on average, DefaultInboundBurst at once. A widget sends a pong
	// per ping (one every 25 s) and an ack per card frame it shows (widget.js
	// show): a manager's busiest minute is a few frames a second, and a
	// catch-up after the broker's reconnect (session.catchUp) writes a burst
	// of frames that are all acked. A session past the bound is closed with
	// event.ClosePolicy; its widget reconnects with back-off. Each frame costs
	// a read, a parse and a metric: unbounded, one socket took a whole core.
	DefaultInboundRate  = 20
	DefaultInboundBurst = 100
)

// Config configures a Hub; zero values take the defaults.
type Config struct {
	QueueSize          int
	PingInterval       time.Duration
	WriteTimeout       time.Duration
	HelloTimeout       time.Duration
	MaxSessionsPerUser int
	ReadLimit          int64
	// InboundRate (frames a second) and InboundBurst bound what one session
	// may send; see DefaultInboundRate.
	InboundRate  float64
	InboundBurst int
	// CheckOrigin reports whether the upgrade request's page may connect;
	// nil allows only requests from their own origin (auth.SameOrigin).
	CheckOrigin func(r *http.Request) bool
	// MaxSessionsFor, when set, is a tenant's own sessions-per-user cap
	// (auth.Identity.Tenant); 0 from it means MaxSessionsPerUser.
	MaxSessionsFor func(tenant string) int
	// TenantMetrics exports sessions and frames by tenant
	// (callpop_tenant_sessions, callpop_tenant_frames_sent_total), the
	// tenant label being an ID that verified a token, "_default" for the
	// default tenant: bounded by the tenant directory.
	TenantMetrics bool

	// noPoller serves every socket with a reader goroutine, as on a
	// platform without epoll: a test's synctest bubble cannot wait on
	// epoll_wait (a system call), only on goroutines.
	noPoller bool
}

// Hub is the node's set of sessions.
type Hub struct {
	cfg     Config
	sub     event.Subscriber
	log     *zap.Logger
	metrics *metrics

	mu      sync.RWMutex
	users   map[string][]*session // guarded by mu
	closing bool                  // guarded by mu
	wg      sync.WaitGroup        // one per session

	stopPing context.CancelFunc
	pingDone chan struct{}
	srv      transport.Server // its Poller is nil where sockets cannot be polled: sessions keep a reader goroutine

	// The inbound limit (session.allowFrame), in nanoseconds since epoch,
	// a monotonic clock: a frame's cost, and how far ahead of the clock a
	// session's budget may run before it is spent.
	epoch       time.Time
	frameCost   int64
	frameBudget int64
}

// New returns a hub fed by sub; it registers itself as sub's handler.
// reg may be nil.
func New(cfg Config, sub event.Subscriber, log *zap.Logger, reg prometheus.Registerer) *Hub {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.MaxSessionsPerUser <= 0 {
		cfg.MaxSessionsPerUser = DefaultMaxSessionsPerUser
	}
	if cfg.ReadLimit <= 0 {
		cfg.ReadLimit = DefaultReadLimit
	}
	if cfg.InboundRate <= 0 {
		cfg.InboundRate = DefaultInboundRate
	}
	if cfg.InboundBurst <= 0 {
		cfg.InboundBurst = DefaultInboundBurst
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &Hub{
		cfg: cfg, sub: sub, log: log.Named("hub"), metrics: newMetrics(reg),
		users: map[string][]*session{}, stopPing: cancel, pingDone: make(chan struct{}),
		epoch: time.Now(), frameCost: max(int64(float64(time.Second)/cfg.InboundRate), 1),
	}
	h.frameBudget = h.frameCost * int64(cfg.InboundBurst)
	h.srv = transport.Server{ReadLimit: cfg.ReadLimit, WriteTimeout: cfg.WriteTimeout}
	if !cfg.noPoller {
		if p, err := transport.NewPoller(h.log); err == nil {
			h.srv.Poller = p
		} else {
			h.log.Info("sessions keep a reader goroutine each", zap.Error(err))
		}
	}
	sub.Register(h.deliver)
	go h.pingLoop(ctx)
	return h
}

// deliver hands m to each of its user's sessions here. It runs on the
// broker's goroutine: it only enqueues.
func (h *Hub) deliver(m event.Message) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	set := h.users[m.UserKey]
	if len(set) > 0 && !m.Resync {
		h.metrics.observe("received", m.ID)
	}
	for _, s := range set {
		if m.Resync {
			s.requestResync()
			continue
		}
		s.enqueue(m)
	}
}

// ServeHTTP upgrades an authenticated request (see auth.JWT.RequireUser) to a
// session and serves it until it ends. The query may carry since=<event id>.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, ok := auth.FromContext(r.Context())
	if !ok {
		jsonhttp.Fail(w, jsonhttp.ErrInvalidToken)
		return
	}
	var since event.ID
	if v := r.URL.Query().Get("since"); v != "" {
		if since, ok = event.ParseID(v); !ok {
			jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
			return
		}
	}
	if !h.allowOrigin(r) {
		jsonhttp.Fail(w, jsonhttp.ErrForbidden)
		return
	}
	conn, err := h.srv.Upgrade(w, r)
	if err != nil {
		h.log.Debug("upgrade failed", zap.Error(err))
		return
	}
	s := &session{hub: h, conn: conn, user: id.Key, expires: id.Expires, pingSlot: randomSlot(), writing: true,
		tenant: h.metrics.tenant(id.Tenant, h.cfg.TenantMetrics)}
	if code, reason := h.add(s); code != 0 {
		conn.Start(refused{}) // reads the peer's answer to the close frame
		_ = conn.Close(code, reason)
		return
	}
	conn.Start(s) // from here on the session may end any time; its end is remove
	if !time.Now().Before(s.expires) {
		s.close(event.CloseTokenExpired, "token expired")
		return
	}
	if err := s.hello(r.Context(), r.URL.Query().Has("since"), since); err != nil {
		if errors.Is(err, transport.ErrClosed) {
			return // closed meanwhile
		}
		h.log.Warn("session not started", zap.String("user", s.user), zap.Error(err))
		s.close(event.CloseUnavailable, "try again")
		return
	}
	s.started()
}

// refused takes what a socket refused before it became a session sends
// until its close handshake is over.
type refused struct{}

func (refused) Frame()               {}
func (refused) Message(bool, []byte) {}
func (refused) Pong()                {}
func (refused) Ended(error)          {}

func (h *Hub) allowOrigin(r *http.Request) bool {
	if h.cfg.CheckOrigin != nil {
		return h.cfg.CheckOrigin(r)
	}
	return auth.Origins{}.AllowRequest(r)
}

// add registers s, refusing it while shutting down or over the user's cap.
func (h *Hub) add(s *session) (code int, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closing {
		return event.CloseRestart, "server restart"
	}
	set := h.users[s.user]
	if len(set) >= h.maxSessions(s.user) {
		h.metrics.refused.WithLabelValues("too_many").Inc()
		return event.CloseTooMany, "too many sessions"
	}
	if len(set) == 0 {
		h.metrics.users.Inc()
	}
	h.users[s.user] = append(set, s)
	h.wg.Add(1)
	h.metrics.sessions.Inc()
	s.tenant.sessions.Inc()
	return 0, ""
}

// maxSessions is the sessions-per-user cap of user's tenant.
func (h *Hub) maxSessions(user string) int {
	if h.cfg.MaxSessionsFor != nil {
		if tid, _ := tenant.Split(user); tid != tenant.DefaultID {
			if n := h.cfg.MaxSessionsFor(tid); n > 0 {
				return n
			}
		}
	}
	return h.cfg.MaxSessionsPerUser
}

// Tenants returns the tenants (IDs, not the default one) with sessions on
// this node, for whoever watches them being disabled.
func (h *Hub) Tenants() []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seen := map[string]bool{}
	var ids []string
	for user := range h.users {
		if tid, _ := tenant.Split(user); tid != tenant.DefaultID && !seen[tid] {
			seen[tid] = true
			ids = append(ids, tid)
		}
	}
	return ids
}

// CloseTenant closes every session of tenant id on this node with code and
// reason, and returns how many it closed. It does not wait for them to end.
func (h *Hub) CloseTenant(id string, code int, reason string) int {
	if id == tenant.DefaultID {
		return 0 // the default tenant cannot be disabled
	}
	prefix := tenant.Key(id, "")
	var all []*session
	h.mu.RLock()
	for user, set := range h.users {
		if strings.HasPrefix(user, prefix) {
			all = append(all, set...)
		}
	}
	h.mu.RUnlock()
	n := 0
	for _, s := range all {
		if s.close(code, reason) {
			n++
		}
	}
	return n
}

// remove forgets s once its transport ended, and releases what it held.
func (h *Hub) remove(s *session) {
	h.mu.Lock()
	set := h.users[s.user]
	for i, x := range set {
		if x == s {
			set[i] = set[len(set)-1]
			set[len(set)-1] = nil
			set = set[:len(set)-1]
			break
		}
	}
	if len(set) == 0 {
		delete(h.users, s.user)
		h.metrics.users.Dec()
	} else {
		h.users[s.user] = set
	}
	h.mu.Unlock()
	if s.subscribed() { // subscriptions are counted: only one that said hello has one
		_ = h.sub.Unsubscribe(context.Background(), s.user)
	}
	h.metrics.sessions.Dec()
	s.tenant.sessions.Dec()
	h.wg.Done()
}

// Sessions returns how many sessions this node holds.
func (h *Hub) Sessions() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, set := range h.users {
		n += len(set)
	}
	return n
}

// pingLoop runs the one schedule every session shares, instead of a timer
// each. Every PingInterval/25 it walks the sessions: it closes those whose
// token expired and those whose pong is more than WriteTimeout late, and
// takes the ones whose ping slot came up; their pings then go out in small
// steps over the following walk interval, not in one burst (a burst of 400
// pings at 10,000 sessions was the p99 of webhook delivery).
func (h *Hub) pingLoop(ctx context.Context) {
	defer close(h.pingDone)
	const slots = 25
	walk := h.cfg.PingInterval / slots
	steps := 50
	if walk/time.Duration(steps) < time.Millisecond {
		steps = 1
	}
	t := time.NewTicker(walk / time.Duration(steps))
	defer t.Stop()
	var expired, silent, due []*session
	sent := 0 // of due
	for tick := 0; ; tick++ {
		var now time.Time
		select {
		case <-ctx.Done():
			return
		case now = <-t.C:
		}
		step := tick % steps
		if step == 0 {
			clear(due)
			due, sent = due[:0], 0
			expired, silent, due = h.walk(now, uint8(tick/steps%slots), expired, silent, due)
			for i, s := range expired {
				s.close(event.CloseTokenExpired, "token expired")
				expired[i] = nil
			}
			for i, s := range silent {
				s.drop("ping", event.CloseRestart, "ping timeout")
				silent[i] = nil
			}
			expired, silent = expired[:0], silent[:0]
		}
		for end := len(due) * (step + 1) / steps; sent < end; sent++ {
			go due[sent].ping()
		}
	}
}

// walk sorts the sessions for the ping schedule, appending to the slices
// given.
func (h *Hub) walk(now time.Time, slot uint8, expired, silent, due []*session) ([]*session, []*session, []*session) {
	overdue := now.Add(-h.cfg.WriteTimeout).UnixNano()
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, set := range h.users {
		for _, s := range set {
			switch sent := s.pingSent.Load(); {
			case !now.Before(s.expires):
				expired = append(expired, s)
			case sent != 0 && sent < overdue:
				silent = append(silent, s)
			case s.pingSlot == slot:
				due = append(due, s)
			}
		}
	}
	return expired, silent, due
}

// Shutdown closes every session with CloseRestart, so widgets reconnect to
// another node, refuses new ones, and waits until all sessions ended or ctx
// is done. It is safe to call more than once.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.mu.Lock()
	h.closing = true
	var all []*session
	for _, set := range h.users {
		all = append(all, set...)
	}
	h.mu.Unlock()
	h.stopPing()
	<-h.pingDone
	for _, s := range all {
		s.close(event.CloseRestart, "server restart")
	}
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		h.stopPoller()
		return nil
	case <-ctx.Done():
		for _, s := range all {
			s.conn.CloseNow()
		}
		h.stopPoller()
		return ctx.Err()
	}
}

func (h *Hub) stopPoller() {
	if h.srv.Poller != nil {
		h.srv.Poller.Stop()
	}
}

func randomSlot() uint8 { return uint8(rand.IntN(25)) }
