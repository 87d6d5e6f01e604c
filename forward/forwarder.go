package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/backoff"
)

// Defaults for Config.
const (
	// DefaultTimeout bounds one POST to the CRM, answer included.
	DefaultTimeout = 10 * time.Second
	// DefaultMinBackoff is the wait before the first retry; each further
	// failure doubles it.
	DefaultMinBackoff = time.Second
	// DefaultMaxBackoff caps the wait between retries: a CRM back from an
	// outage gets its records within five minutes.
	DefaultMaxBackoff = 5 * time.Minute
	// maxQueueBackoff caps the wait after a queue error (Redis away), which
	// says nothing about the CRM.
	maxQueueBackoff = 5 * time.Second
	// finishTimeout bounds an Ack, Retry or Bury, which run even when Run's
	// context has just ended: a record the CRM took should not be sent again.
	finishTimeout = 5 * time.Second
	// statsInterval: how often Run refreshes the queue gauges while idle.
	statsInterval = 10 * time.Second
	// maxReasonBody: how much of a rejecting CRM's answer goes into the dead
	// letter's reason and the log.
	maxReasonBody = 256
)

var (
	// ErrRunning is returned by Run while another Run of the same Forwarder
	// is going.
	ErrRunning = errors.New("forward: already running")
	// ErrInvalidRecord is returned by Enqueue for a record without a callid.
	ErrInvalidRecord = errors.New("forward: invalid record")
)

// Config configures a Forwarder.
type Config struct {
	// URL receives every record: POST, application/json, an Item. Required,
	// http or https.
	URL string
	// Header is added to every POST (e.g. Authorization); optional.
	Header http.Header
	// HTTPClient sends the POSTs; nil means a client that follows only 307
	// and 308 redirects (a 301/302/303 would turn the POST into a GET).
	HTTPClient *http.Client
	// Timeout bounds one POST; zero means DefaultTimeout.
	Timeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between retries of a record
	// (doubling, with jitter: each wait is between half and all of the
	// doubled value); zero means DefaultMinBackoff, DefaultMaxBackoff. A
	// Retry-After answer is honoured up to MaxBackoff.
	MinBackoff, MaxBackoff time.Duration
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Forwarder enqueues call records and delivers them to the CRM.
type Forwarder struct {
	cfg     Config
	q       Queue
	client  *http.Client
	ownHTTP bool // client is ours: close its idle connections when Run ends
	log     *zap.Logger
	m       *metrics
	running atomic.Bool

	delivered, failed atomic.Uint64 // Counts' totals

	statsMu sync.Mutex
	stats   Stats // the queue's last Stats; guarded by statsMu
}

// New returns a Forwarder for q. log may be nil (no logs) and reg nil (no
// metrics registered).
func New(cfg Config, q Queue, log *zap.Logger, reg prometheus.Registerer) (*Forwarder, error) {
	if q == nil {
		return nil, errors.New("forward: queue is nil")
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("forward: URL %q is not an http(s) URL", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.MinBackoff > cfg.MaxBackoff {
		return nil, fmt.Errorf("forward: MinBackoff %v exceeds MaxBackoff %v", cfg.MinBackoff, cfg.MaxBackoff)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	f := &Forwarder{cfg: cfg, q: q, client: cfg.HTTPClient, log: log.Named("forward")}
	if f.client == nil {
		f.client, f.ownHTTP = &http.Client{CheckRedirect: keepPOST}, true
	}
	f.m = newMetrics(reg, f)
	return f, nil
}

// keepPOST follows a redirect only when it keeps the method and body.
func keepPOST(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 || req.Response == nil ||
		(req.Response.StatusCode != http.StatusTemporaryRedirect && req.Response.StatusCode != http.StatusPermanentRedirect) {
		return http.ErrUseLastResponse
	}
	return nil
}

// Enqueue stores rec for the CRM and returns once it is durable in the queue
// (or was already queued within the dedupe window: not an error). Answer the
// PBX only after it returns nil.
func (f *Forwarder) Enqueue(ctx context.Context, rec event.Record) error {
	if rec.CallID == "" {
		return fmt.Errorf("%w: no callid", ErrInvalidRecord)
	}
	return f.enqueue(ctx, NewItem(rec))
}

// EnqueueRating stores rec again, under RatingKey, as Enqueue does: its
// rating arrived after the record was enqueued without it.
func (f *Forwarder) EnqueueRating(ctx context.Context, rec event.Record) error {
	if rec.CallID == "" || rec.Rating == "" {
		return fmt.Errorf("%w: no callid or rating", ErrInvalidRecord)
	}
	it := NewItem(rec)
	it.Key = RatingKey(rec)
	return f.enqueue(ctx, it)
}

func (f *Forwarder) enqueue(ctx context.Context, it Item) error {
	data, err := marshal(it)
	if err != nil {
		return fmt.Errorf("forward: %w", err)
	}
	added, err := f.q.Push(ctx, it.Key, data)
	if err != nil {
		f.m.enqueueErrors.Inc()
		return fmt.Errorf("forward: enqueue %s: %w", it.Key, err)
	}
	if !added {
		f.m.duplicates.Inc()
		f.log.Debug("record already queued", zap.String("key", it.Key))
		return nil
	}
	f.m.enqueued.Inc()
	if ce := f.log.Check(zap.DebugLevel, "record queued"); ce != nil {
		ce.Write(zap.String("key", it.Key), zap.Strings("flags", it.Flags))
	}
	return nil
}

// Run delivers queued records, oldest first, one at a time, until ctx ends;
// then it returns nil, leaving a record whose POST was cut short in the
// queue, to be sent again. It blocks. A record is acknowledged only after a
// 2xx; 408, 429, 5xx, a redirect it does not follow and a network error are
// retried with back-off, any other 4xx buries it in the dead letters. Run
// returns an error only for a queue that was closed, or ErrRunning.
func (f *Forwarder) Run(ctx context.Context) error {
	if !f.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer f.running.Store(false)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { f.watchStats(rctx) })
	defer func() {
		cancel()
		wg.Wait()
		if r, ok := f.q.(Releaser); ok {
			rel, rcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			if err := r.Release(rel); err != nil {
				f.log.Warn("queue release failed", zap.Error(err))
			}
			rcancel()
		}
		if f.ownHTTP {
			f.client.CloseIdleConnections()
		}
	}()

	f.log.Info("forwarding call records", zap.String("url", redactURL(f.cfg.URL)))
	failures := 0
	for {
		e, err := f.q.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrClosed) {
			return err
		}
		if err != nil {
			failures++
			d := backoff.Policy{Base: f.cfg.MinBackoff, Max: min(f.cfg.MaxBackoff, maxQueueBackoff)}.Delay(failures - 1)
			f.m.queueErrors.Inc()
			f.log.Warn("queue unavailable", zap.Error(err), zap.Duration("retry_in", d))
			if !backoff.Sleep(ctx, d) {
				return nil
			}
			continue
		}
		failures = 0
		f.deliver(ctx, e)
	}
}

// outcome is what one POST came to.
type outcome int

const (
	delivered outcome = iota
	retry
	permanent
)

// deliver sends e once and records the outcome in the queue.
func (f *Forwarder) deliver(ctx context.Context, e Entry) {
	log := f.log.With(zap.String("key", e.Key), zap.String("id", e.ID))
	res, code, retryAfter, detail := f.send(ctx, e)
	if res != delivered && ctx.Err() != nil {
		return // stopping: the record stays queued for the next Run
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	switch res {
	case delivered:
		if err := f.q.Ack(fctx, e); err != nil {
			f.m.queueErrors.Inc()
			log.Warn("delivered but not acknowledged; it will be sent again", zap.Error(err))
			return
		}
		f.m.delivered.Inc()
		f.delivered.Add(1)
		if ce := log.Check(zap.DebugLevel, "record delivered"); ce != nil {
			ce.Write(zap.Int("attempts", e.Attempts+1), zap.Duration("queued_for", f.cfg.Now().Sub(e.Enqueued)))
		}
	case permanent:
		reason := "CRM answered " + code
		if detail != "" {
			reason += ": " + detail
		}
		if err := f.q.Bury(fctx, e, reason); err != nil {
			f.m.queueErrors.Inc()
			log.Warn("rejected record not moved to the dead letters; it will be sent again", zap.Error(err))
			return
		}
		f.m.dead.Inc()
		f.failed.Add(1)
		log.Error("CRM rejected the record; moved to the dead letters", zap.String("reason", reason))
	case retry:
		d := max(backoff.Policy{Base: f.cfg.MinBackoff, Max: f.cfg.MaxBackoff}.Delay(e.Attempts), min(retryAfter, f.cfg.MaxBackoff))
		f.m.retries.WithLabelValues(code).Inc()
		f.failed.Add(1)
		log.Warn("CRM did not take the record; retrying", zap.String("code", code), zap.String("detail", detail),
			zap.Int("attempt", e.Attempts+1), zap.Duration("retry_in", d))
		if err := f.q.Retry(fctx, e, f.cfg.Now().Add(d)); err != nil {
			f.m.queueErrors.Inc()
			log.Warn("retry not recorded in the queue", zap.Error(err))
			backoff.Sleep(ctx, d) // do not hammer the CRM because the queue failed
		}
	}
	f.refreshStats(fctx)
}

// send POSTs e once. code is the HTTP status or "network"; detail a short
// description for logs (a rejecting CRM's answer, a network error).
func (f *Forwarder) send(ctx context.Context, e Entry) (res outcome, code string, retryAfter time.Duration, detail string) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.URL, bytes.NewReader(e.Data))
	if err != nil {
		return retry, "request", 0, err.Error()
	}
	for k, v := range f.cfg.Header {
		req.Header[k] = append([]string(nil), v...)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", e.Key)
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "callpop-forward/1")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL, which may carry a token
		}
		return retry, "network", 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	code = strconv.Itoa(resp.StatusCode)
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return delivered, code, 0, ""
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return retry, code, parseRetryAfter(resp.Header.Get("Retry-After"), f.cfg.Now()), snippet(body)
	case s >= 400:
		return permanent, code, 0, snippet(body)
	default: // 1xx, or a 3xx not followed: the CRM did not take it
		return retry, code, 0, resp.Header.Get("Location")
	}
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return 0
}

// snippet is the start of a CRM's answer, safe to log.
func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > maxReasonBody {
		b = b[:maxReasonBody]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.ToValidUTF8(string(b), "?")
}

// redactURL drops credentials and the query (which may hold a token).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	u.User, u.RawQuery = nil, ""
	return u.String()
}

// watchStats refreshes the queue gauges every statsInterval until ctx ends.
func (f *Forwarder) watchStats(ctx context.Context) {
	t := time.NewTicker(statsInterval)
	defer t.Stop()
	for {
		f.refreshStats(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (f *Forwarder) refreshStats(ctx context.Context) {
	s, err := f.q.Stats(ctx)
	if err != nil {
		return
	}
	f.statsMu.Lock()
	f.stats = s
	f.statsMu.Unlock()
}

// Counts are a Forwarder's totals since New and its queue as last seen:
// what its metrics export, for a caller that exports them under labels of
// its own (cmd/callpop's per-tenant series).
type Counts struct {
	Delivered uint64 // records the CRM took (callpop_forward_delivered_total)
	// Failed counts POSTs the CRM did not take: retried, or rejected for
	// good (callpop_forward_retries_total and _dead_lettered_total).
	Failed uint64
	Queued int // records waiting, as of the last look at the queue (callpop_forward_queued)
	Dead   int // records in the dead letters (callpop_forward_dead_letters)
}

// Counts returns f's totals. It does not block.
func (f *Forwarder) Counts() Counts {
	s := f.lastStats()
	return Counts{Delivered: f.delivered.Load(), Failed: f.failed.Load(), Queued: s.Queued, Dead: s.Dead}
}

func (f *Forwarder) lastStats() Stats {
	f.statsMu.Lock()
	defer f.statsMu.Unlock()
	return f.stats
}

type metrics struct {
	enqueued, duplicates, enqueueErrors prometheus.Counter
	delivered, dead, queueErrors        prometheus.Counter
	retries                             *prometheus.CounterVec
	queued, oldest, deadNow             prometheus.GaugeFunc
}

func newMetrics(reg prometheus.Registerer, f *Forwarder) *metrics {
	m := &metrics{
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_forward_enqueued_total", Help: "Call records queued for the CRM.",
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_forward_duplicates_total", Help: "Call records not queued again: the same key within the dedupe window.",
		}),
		enqueueErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_forward_enqueue_errors_total", Help: "Call records the queue could not store (the webhook answered 503).",
		}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_forward_delivered_total", Help: "Call records the CRM took (2xx).",
		}),
		dead: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_forward_dead_lettered_total", Help: "Call records the CRM rejected for good (4xx), moved to the dead letters.",
		}),
		queueErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "callpop_forward_queue_errors_total", Help: "Failed reads and updates of the forward queue.",
		}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "callpop_forward_retries_total", Help: "Failed POSTs to the CRM that will be retried, by HTTP status or \"network\".",
		}, []string{"code"}),
	}
	// The usual codes exported at 0, so rate() sees the first retry; any
	// other status gets its series when it happens.
	for _, code := range []string{"network", "429", "500", "502", "503", "504"} {
		m.retries.WithLabelValues(code)
	}
	queued := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callpop_forward_queued", Help: "Call records waiting for the CRM (as of the last look at the queue).",
	}, func() float64 { return float64(f.lastStats().Queued) })
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callpop_forward_oldest_age_seconds", Help: "Age of the oldest call record waiting for the CRM; 0 when none.",
	}, func() float64 {
		s := f.lastStats()
		if s.Queued == 0 || s.Oldest.IsZero() {
			return 0
		}
		return max(f.cfg.Now().Sub(s.Oldest).Seconds(), 0)
	})
	m.queued, m.oldest = queued, oldest
	m.deadNow = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "callpop_forward_dead_letters", Help: "Call records in the dead letters, waiting for an operator.",
	}, func() float64 { return float64(f.lastStats().Dead) })
	if reg != nil {
		reg.MustRegister(m.enqueued, m.duplicates, m.enqueueErrors, m.delivered, m.dead, m.queueErrors, m.retries,
			queued, oldest, m.deadNow)
	}
	return m
}
