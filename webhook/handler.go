// Package webhook is the PBX's single CRM entry point (docs/pbx-api.md): it
// authenticates, decodes and validates the PBX's webhooks, answers them in
// JSON, and hands call events and records to an event.Publisher.
package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/jsonhttp"
	"github.com/callpop/callpop/tenant"
)

// DefaultContactBudget is how long the PBX is kept waiting for a contact
// answer while the call rings; public integrations answer within ~1.2 s.
const DefaultContactBudget = time.Second

// DefaultLoginFailures is how many webhooks with a wrong crm_token one source
// address may send a minute, all at once at most: a PBX with the right key
// never fails, a brute force is cut to a crawl. cmd/callpop answers an
// address past it 429 until the budget refills (guard.Failures, charged
// through Config.OnInvalidToken).
const DefaultLoginFailures = 10

// Config configures a Handler.
type Config struct {
	// CRMToken is the crm_token the PBX sends. Required.
	CRMToken string
	// ContactBudget bounds a contact look-up (the contact answer and the
	// popup enrichment); zero means DefaultContactBudget.
	ContactBudget time.Duration
	// MaxBody is the largest body read; zero means DefaultMaxBody.
	MaxBody int64
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Forward, when set, gets every applied call record for the CRM, and
	// the record again when its rating arrives after it; the PBX is
	// answered 200 only after Enqueue (EnqueueRating) returned nil. Nil:
	// records are not forwarded.
	Forward Forwarder
	// OnInvalidToken, when set, is called for every webhook answered 401,
	// e.g. to charge its sender's failure budget (guard.Failures).
	OnInvalidToken func(r *http.Request)
	// Names, when set, gives the real names of PBX logins: the contact's
	// responsible manager (contact.responsible_name) and who accepted a
	// call (answered_by_name). Nil: names stay empty.
	Names event.Names
	// Tenants: other tenants share this node (ServeScoped). The default
	// tenant's callids may then not hold "/": such an id would be another
	// tenant's scoped id (tenant.Key). Refused with 400.
	Tenants bool
}

// Forwarder receives call records for the CRM (forward.Forwarder).
type Forwarder interface {
	Enqueue(ctx context.Context, rec event.Record) error
	// EnqueueRating enqueues a record already enqueued without its rating
	// again, under a key of its own.
	EnqueueRating(ctx context.Context, rec event.Record) error
}

// Scope is whom a webhook is served for: one tenant's crm_token(s), key
// scope, contact directory, forwarder and names. The default tenant's comes
// from Config and New's arguments (Handler.ServeHTTP); cmd/callpop builds
// one per tenant (Handler.ServeScoped).
type Scope struct {
	// Tenant is the tenant's ID; "" (tenant.DefaultID) keeps keys unscoped.
	Tenant string
	// TokenOK checks a presented crm_token, in constant time. Required.
	TokenOK func(token string) bool
	// Dir answers contacts; nil: every number is unknown.
	Dir event.Directory
	// Forward, Names: as in Config; nil for none.
	Forward Forwarder
	Names   event.Names
	// Admit, when set, is asked once the token is right; false answers
	// 429 (the tenant's webhook rate).
	Admit func() bool
	// Label is the tenant's value of callpop_tenant_webhooks_total's tenant
	// label; "" counts nothing there. It must come from a bounded set.
	Label string
	// OnInvalidToken, when set, is called for every webhook of the scope
	// answered 401 instead of Config.OnInvalidToken (a tenant's failures
	// charge a budget of its own).
	OnInvalidToken func(r *http.Request)
}

// Handler serves POST /webhook.
type Handler struct {
	cfg     Config
	pub     event.Publisher
	log     *zap.Logger
	metrics *metrics
	def     *Scope // the default tenant's
}

// New returns a Handler publishing to pub and answering contacts from dir
// (nil: every number is unknown). reg may be nil.
func New(cfg Config, pub event.Publisher, dir event.Directory, log *zap.Logger, reg prometheus.Registerer) (*Handler, error) {
	if cfg.CRMToken == "" {
		return nil, errors.New("webhook: CRMToken is required")
	}
	if cfg.ContactBudget <= 0 {
		cfg.ContactBudget = DefaultContactBudget
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = DefaultMaxBody
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	h := &Handler{cfg: cfg, pub: pub, log: log.Named("webhook"), metrics: newMetrics(reg)}
	h.def = &Scope{TokenOK: func(got string) bool { return auth.TokenEqual(cfg.CRMToken, got) }, Dir: dir, Names: cfg.Names}
	if cfg.Forward != nil {
		h.def.Forward = cfg.Forward
	}
	return h, nil
}

// ServeHTTP answers one webhook for the default tenant.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.ServeScoped(w, r, h.def) }

// ServeScoped answers one webhook for sc. Order matters: method, then a
// token from a header (before the body is even read), then the body, then
// its token, then the tenant's rate, then the command and its fields.
func (h *Handler) ServeScoped(w http.ResponseWriter, r *http.Request, sc *Scope) {
	start := time.Now()
	cmd := "unknown"
	status := http.StatusOK
	defer func() { h.metrics.observe(cmd, status, sc.Label, time.Since(start)) }()
	fail := func(e *jsonhttp.Error) {
		status = e.Status
		jsonhttp.Fail(w, e)
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		fail(jsonhttp.ErrMethodNotAllowed)
		return
	}
	headerToken := r.Header.Get("X-CRM-Token")
	if headerToken == "" {
		headerToken = auth.BearerToken(r)
	}
	badToken := func() {
		switch {
		case sc.OnInvalidToken != nil:
			sc.OnInvalidToken(r)
		case h.cfg.OnInvalidToken != nil:
			h.cfg.OnInvalidToken(r)
		}
		fail(jsonhttp.ErrInvalidToken)
	}
	if headerToken != "" && !sc.TokenOK(headerToken) {
		badToken()
		return
	}
	form, err := ParseBody(r.Header.Get("Content-Type"), http.MaxBytesReader(w, r.Body, h.cfg.MaxBody), h.cfg.MaxBody)
	switch {
	case errors.Is(err, ErrTooLarge):
		fail(jsonhttp.ErrTooLarge)
		return
	case err != nil:
		h.log.Debug("unparseable body", zap.Error(err))
		fail(jsonhttp.ErrInvalidParameters)
		return
	}
	if headerToken == "" && !sc.TokenOK(form["crm_token"]) {
		badToken()
		return
	}
	if sc.Admit != nil && !sc.Admit() {
		w.Header().Set("Retry-After", "1")
		fail(jsonhttp.ErrTooManyRequests)
		return
	}

	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		rid = newRequestID()
	}
	log := h.log.WithLazy(zap.String("request_id", rid)) // encoded only if a line is written
	if sc.Tenant != "" {
		log = log.WithLazy(zap.String("tenant", sc.Tenant))
	}
	s := scoped{h: h, sc: sc}
	r = r.WithContext(context.WithValue(r.Context(), startKey{}, start))
	cmd = form.Cmd()
	var answer any
	switch cmd {
	case CmdEvent:
		err = s.event(r.Context(), log, form)
	case CmdHistory:
		err = s.history(r.Context(), log, form)
	case CmdContact:
		answer, err = s.contact(r.Context(), log, form)
	case CmdRating:
		err = s.rating(r.Context(), log, form)
	case CmdWebhook:
		log.Info("pbx notice", zap.String("type", form["type"]))
	default:
		log.Debug("unknown cmd", zap.String("cmd", cmd))
		cmd = "unknown"
		err = invalid("unknown cmd")
	}
	switch {
	case errors.Is(err, ErrInvalid):
		log.Info("invalid webhook", zap.String("cmd", cmd), zap.Error(err))
		fail(jsonhttp.ErrInvalidParameters)
	case err != nil:
		log.Error("webhook not applied", zap.String("cmd", cmd), zap.Error(err))
		fail(jsonhttp.ErrUnavailable)
	case answer != nil:
		jsonhttp.Write(w, http.StatusOK, answer)
	default:
		jsonhttp.WriteEncoded(w, http.StatusOK, okAnswer)
	}
}

// okAnswer is the PBX's expected answer to a webhook it needs nothing back from.
var okAnswer = []byte(`{"status":"ok"}` + "\n")

func (s scoped) event(ctx context.Context, log *zap.Logger, f Form) error {
	ev, err := ParseEvent(f, s.h.cfg.Now())
	if err != nil {
		return err
	}
	if ev.Type == event.Incoming || ev.Type == event.Outgoing || ev.Type == event.Accepted {
		if c, ok := s.lookup(ctx, log, ev.Phone); ok {
			ev.Contact = &c
		}
	}
	if ev.Type == event.Accepted && s.sc.Names != nil {
		ev.UserName = s.sc.Names.RealName(ev.User)
	}
	log.Info("call event", zap.String("type", string(ev.Type)), zap.String("user", event.UserKey(ev.User)),
		zap.String("callid", ev.CallID))
	err = s.update(ctx, ev.CallID, func(rec *event.CallState) []event.Out {
		return rec.ApplyEvent(ev)
	})
	if err == nil {
		s.h.metrics.publish.Observe(time.Since(requestStart(ctx)).Seconds())
	}
	return err
}

func (s scoped) history(ctx context.Context, log *zap.Logger, f Form) error {
	rec, err := ParseHistory(f)
	if err != nil {
		return err
	}
	if c, ok := s.lookup(ctx, log, rec.Phone); ok {
		rec.Contact = &c
	}
	now := s.h.cfg.Now()
	log.Info("call record", zap.String("status", string(rec.Status)), zap.String("user", event.UserKey(rec.User)),
		zap.String("callid", rec.CallID))
	var applied event.Record
	err = s.update(ctx, rec.CallID, func(cr *event.CallState) []event.Out {
		outs := cr.ApplyHistory(rec, now)
		applied = *cr.Record // the committed run's: with the legs' contact and an early rating
		return outs
	})
	if err != nil || s.sc.Forward == nil {
		return err
	}
	// A repeat is enqueued again and dropped by the queue's own de-duplication.
	if err := s.sc.Forward.Enqueue(ctx, applied); err != nil {
		return fmt.Errorf("webhook: forward %s: %w", rec.CallID, err)
	}
	return nil
}

func (s scoped) rating(ctx context.Context, log *zap.Logger, f Form) error {
	rt, ok := ParseRating(f)
	if !ok {
		log.Info("rating without callid or value; acknowledged")
		return nil
	}
	var late *event.Record
	err := s.update(ctx, rt.CallID, func(cr *event.CallState) []event.Out {
		late = nil // the committed run's decides
		// The record was forwarded before this rating unless the rating came
		// first (cr.Rating, attached by ApplyHistory). A repeat is enqueued
		// again, so one after a failed Enqueue still reaches the CRM, and is
		// dropped by the queue's own de-duplication.
		forward := cr.Record != nil && (cr.Record.Rating != rt.Value || cr.Rating != rt.Value)
		outs := cr.ApplyRating(rt.Value)
		if forward {
			rec := *cr.Record
			late = &rec
		}
		return outs
	})
	if err != nil || late == nil || s.sc.Forward == nil {
		return err
	}
	if err := s.sc.Forward.EnqueueRating(ctx, *late); err != nil {
		return fmt.Errorf("webhook: forward rating %s: %w", rt.CallID, err)
	}
	return nil
}

// contactAnswer is the PBX's expected answer (docs/pbx-api.md, "contact").
type contactAnswer struct {
	Name        string `json:"contact_name,omitempty"`
	Responsible string `json:"responsible,omitempty"`
}

func (s scoped) contact(ctx context.Context, log *zap.Logger, f Form) (any, error) {
	phone, callID, err := ParseContact(f)
	if err != nil {
		return nil, err
	}
	c, ok := s.lookup(ctx, log.WithLazy(zap.String("callid", callID)), phone)
	if !ok {
		return contactAnswer{}, nil
	}
	return contactAnswer{Name: c.Name, Responsible: c.Responsible}, nil
}

// lookup asks the directory within the contact budget. A slow, failing or
// missing directory means "unknown": the PBX must never wait on us.
func (s scoped) lookup(ctx context.Context, log *zap.Logger, phone string) (event.Contact, bool) {
	if s.sc.Dir == nil {
		return event.Contact{}, false
	}
	// Directories honour the deadline (event.Directory's contract: the CRM
	// look-up and Chain stop at it, the CSV one never waits), so no goroutine
	// per webhook is needed to walk away from a slow one.
	ctx, cancel := context.WithTimeout(ctx, s.h.cfg.ContactBudget)
	defer cancel()
	c, ok, err := s.sc.Dir.Lookup(ctx, phone)
	switch {
	case ctx.Err() != nil:
		s.h.metrics.contactTimeouts.Inc()
		log.Warn("contact look-up over budget", zap.Duration("budget", s.h.cfg.ContactBudget))
		return event.Contact{}, false
	case err != nil:
		log.Warn("contact look-up failed", zap.Error(err))
		return event.Contact{}, false
	}
	if ok && c.Responsible != "" && s.sc.Names != nil {
		c.ResponsibleName = s.sc.Names.RealName(c.Responsible)
	}
	return c, ok
}

// scoped is the handler at work for one Scope.
type scoped struct {
	h  *Handler
	sc *Scope
}

// update applies fn to the tenant's call callID: under its scoped id, with
// the call's Scope set, so every user key its frames go to is the
// tenant's (event.CallState.Scope).
func (s scoped) update(ctx context.Context, callID string, fn event.UpdateFunc) error {
	if s.sc.Tenant == tenant.DefaultID {
		if s.h.cfg.Tenants && strings.Contains(callID, "/") {
			return invalid("callid holds /")
		}
		return s.h.pub.Update(ctx, callID, fn)
	}
	scope := tenant.Key(s.sc.Tenant, "")
	return s.h.pub.Update(ctx, tenant.Key(s.sc.Tenant, callID), func(rec *event.CallState) []event.Out {
		rec.Scope = scope
		return fn(rec)
	})
}

type startKey struct{}

// requestStart is when the webhook arrived (set by ServeHTTP).
func requestStart(ctx context.Context) time.Time {
	t, _ := ctx.Value(startKey{}).(time.Time)
	return t
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type metrics struct {
	requests        *prometheus.CounterVec
	tenants         *prometheus.CounterVec // by tenant and status; labels from Scope.Label
	tenantDuration  *prometheus.SummaryVec // by tenant: sum and count, no buckets
	latency         *prometheus.HistogramVec
	contactTimeouts prometheus.Counter
	publish         prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_webhooks_total", Help: "PBX webhooks by command and HTTP status.",
		}, []string{"cmd", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "callpop_webhook_duration_seconds",
			Help:    "Time from a webhook's arrival to its answer (validated and published).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"cmd"}),
		tenants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_tenant_webhooks_total",
			Help: "PBX webhooks by tenant (_default, a tenant ID, _unknown for a tenant path nobody owns) and HTTP status.",
		}, []string{"tenant", "status"}),
		// A sum and a count per tenant: the mean by tenant at two series
		// each; the distribution is callpop_webhook_duration_seconds's.
		tenantDuration: prometheus.NewSummaryVec(prometheus.SummaryOpts{
			Name: "callpop_tenant_webhook_duration_seconds",
			Help: "Time from a webhook's arrival to its answer, by tenant (sum and count: the mean).",
		}, []string{"tenant"}),
		contactTimeouts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_contact_lookup_timeouts_total", Help: "Contact look-ups that ran over the budget.",
		}),
		publish: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "callpop_webhook_publish_seconds",
			Help:    "Time from a webhook's arrival until its frames were stored and published by the broker.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
	}
	// Every command's series exported at 0 from the start, so rate() and
	// absent() alerts (deploy/prometheus/alerts.yaml) see the first 503.
	for _, cmd := range metricCmds {
		for _, status := range []int{http.StatusOK, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
			http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusTooManyRequests, http.StatusServiceUnavailable} {
			m.requests.WithLabelValues(cmd, strconv.Itoa(status))
		}
		m.latency.WithLabelValues(cmd)
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.tenants, m.tenantDuration, m.latency, m.contactTimeouts, m.publish)
	}
	return m
}

// metricCmds are the cmd label's values: the PBX's commands and "unknown".
var metricCmds = []string{CmdEvent, CmdContact, CmdHistory, CmdRating, CmdWebhook, "unknown"}

func (m *metrics) observe(cmd string, status int, tenantLabel string, d time.Duration) {
	switch cmd {
	case CmdEvent, CmdContact, CmdHistory, CmdRating, CmdWebhook:
	default:
		cmd = "unknown"
	}
	m.requests.WithLabelValues(cmd, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(cmd).Observe(d.Seconds())
	if tenantLabel != "" {
		m.tenants.WithLabelValues(tenantLabel, strconv.Itoa(status)).Inc()
		m.tenantDuration.WithLabelValues(tenantLabel).Observe(d.Seconds())
	}
}
