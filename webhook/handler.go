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
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/jsonhttp"
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
}

// Forwarder receives call records for the CRM (forward.Forwarder).
type Forwarder interface {
	Enqueue(ctx context.Context, rec event.Record) error
	// EnqueueRating enqueues a record already enqueued without its rating
	// again, under a key of its own.
	EnqueueRating(ctx context.Context, rec event.Record) error
}

// Handler serves POST /webhook.
type Handler struct {
	cfg     Config
	pub     event.Publisher
	dir     event.Directory
	log     *zap.Logger
	metrics *metrics
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
	return &Handler{cfg: cfg, pub: pub, dir: dir, log: log.Named("webhook"), metrics: newMetrics(reg)}, nil
}

// ServeHTTP answers one webhook. Order matters: method, then a token from a
// header (before the body is even read), then the body, then its token, then
// the command and its fields.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	cmd := "unknown"
	status := http.StatusOK
	defer func() { h.metrics.observe(cmd, status, time.Since(start)) }()
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
		if h.cfg.OnInvalidToken != nil {
			h.cfg.OnInvalidToken(r)
		}
		fail(jsonhttp.ErrInvalidToken)
	}
	if headerToken != "" && !auth.TokenEqual(h.cfg.CRMToken, headerToken) {
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
	if headerToken == "" && !auth.TokenEqual(h.cfg.CRMToken, form["crm_token"]) {
		badToken()
		return
	}

	rid := r.Header.Get("X-Request-Id")
	if rid == "" || len(rid) > 64 {
		rid = newRequestID()
	}
	log := h.log.WithLazy(zap.String("request_id", rid)) // encoded only if a line is written
	r = r.WithContext(context.WithValue(r.Context(), startKey{}, start))
	cmd = form.Cmd()
	var answer any
	switch cmd {
	case CmdEvent:
		err = h.event(r.Context(), log, form)
	case CmdHistory:
		err = h.history(r.Context(), log, form)
	case CmdContact:
		answer, err = h.contact(r.Context(), log, form)
	case CmdRating:
		err = h.rating(r.Context(), log, form)
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

func (h *Handler) event(ctx context.Context, log *zap.Logger, f Form) error {
	ev, err := ParseEvent(f, h.cfg.Now())
	if err != nil {
		return err
	}
	if ev.Type == event.Incoming || ev.Type == event.Outgoing || ev.Type == event.Accepted {
		if c, ok := h.lookup(ctx, log, ev.Phone); ok {
			ev.Contact = &c
		}
	}
	if ev.Type == event.Accepted && h.cfg.Names != nil {
		ev.UserName = h.cfg.Names.RealName(ev.User)
	}
	log.Info("call event", zap.String("type", string(ev.Type)), zap.String("user", event.UserKey(ev.User)),
		zap.String("callid", ev.CallID))
	err = h.pub.Update(ctx, ev.CallID, func(rec *event.CallState) []event.Out {
		return rec.ApplyEvent(ev)
	})
	if err == nil {
		h.metrics.publish.Observe(time.Since(requestStart(ctx)).Seconds())
	}
	return err
}

func (h *Handler) history(ctx context.Context, log *zap.Logger, f Form) error {
	rec, err := ParseHistory(f)
	if err != nil {
		return err
	}
	if c, ok := h.lookup(ctx, log, rec.Phone); ok {
		rec.Contact = &c
	}
	now := h.cfg.Now()
	log.Info("call record", zap.String("status", string(rec.Status)), zap.String("user", event.UserKey(rec.User)),
		zap.String("callid", rec.CallID))
	var applied event.Record
	err = h.pub.Update(ctx, rec.CallID, func(cr *event.CallState) []event.Out {
		outs := cr.ApplyHistory(rec, now)
		applied = *cr.Record // the committed run's: with the legs' contact and an early rating
		return outs
	})
	if err != nil || h.cfg.Forward == nil {
		return err
	}
	// A repeat is enqueued again and dropped by the queue's own de-duplication.
	if err := h.cfg.Forward.Enqueue(ctx, applied); err != nil {
		return fmt.Errorf("webhook: forward %s: %w", rec.CallID, err)
	}
	return nil
}

func (h *Handler) rating(ctx context.Context, log *zap.Logger, f Form) error {
	rt, ok := ParseRating(f)
	if !ok {
		log.Info("rating without callid or value; acknowledged")
		return nil
	}
	var late *event.Record
	err := h.pub.Update(ctx, rt.CallID, func(cr *event.CallState) []event.Out {
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
	if err != nil || late == nil || h.cfg.Forward == nil {
		return err
	}
	if err := h.cfg.Forward.EnqueueRating(ctx, *late); err != nil {
		return fmt.Errorf("webhook: forward rating %s: %w", rt.CallID, err)
	}
	return nil
}

// contactAnswer is the PBX's expected answer (docs/pbx-api.md, "contact").
type contactAnswer struct {
	Name        string `json:"contact_name,omitempty"`
	Responsible string `json:"responsible,omitempty"`
}

func (h *Handler) contact(ctx context.Context, log *zap.Logger, f Form) (any, error) {
	phone, callID, err := ParseContact(f)
	if err != nil {
		return nil, err
	}
	c, ok := h.lookup(ctx, log.WithLazy(zap.String("callid", callID)), phone)
	if !ok {
		return contactAnswer{}, nil
	}
	return contactAnswer{Name: c.Name, Responsible: c.Responsible}, nil
}

// lookup asks the directory within the contact budget. A slow, failing or
// missing directory means "unknown": the PBX must never wait on us.
func (h *Handler) lookup(ctx context.Context, log *zap.Logger, phone string) (event.Contact, bool) {
	if h.dir == nil {
		return event.Contact{}, false
	}
	// Directories honour the deadline (event.Directory's contract: the CRM
	// look-up and Chain stop at it, the CSV one never waits), so no goroutine
	// per webhook is needed to walk away from a slow one.
	ctx, cancel := context.WithTimeout(ctx, h.cfg.ContactBudget)
	defer cancel()
	c, ok, err := h.dir.Lookup(ctx, phone)
	switch {
	case ctx.Err() != nil:
		h.metrics.contactTimeouts.Inc()
		log.Warn("contact look-up over budget", zap.Duration("budget", h.cfg.ContactBudget))
		return event.Contact{}, false
	case err != nil:
		log.Warn("contact look-up failed", zap.Error(err))
		return event.Contact{}, false
	}
	if ok && c.Responsible != "" && h.cfg.Names != nil {
		c.ResponsibleName = h.cfg.Names.RealName(c.Responsible)
	}
	return c, ok
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
		reg.MustRegister(m.requests, m.latency, m.contactTimeouts, m.publish)
	}
	return m
}

// metricCmds are the cmd label's values: the PBX's commands and "unknown".
var metricCmds = []string{CmdEvent, CmdContact, CmdHistory, CmdRating, CmdWebhook, "unknown"}

func (m *metrics) observe(cmd string, status int, d time.Duration) {
	switch cmd {
	case CmdEvent, CmdContact, CmdHistory, CmdRating, CmdWebhook:
	default:
		cmd = "unknown"
	}
	m.requests.WithLabelValues(cmd, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(cmd).Observe(d.Seconds())
}
