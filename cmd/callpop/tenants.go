package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/callpop/callpop/api"
	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/contacts/rediscache"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/forward"
	"github.com/callpop/callpop/hub"
	"github.com/callpop/callpop/internal/guard"
	"github.com/callpop/callpop/internal/jsonhttp"
	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/tenant"
	"github.com/callpop/callpop/webhook"
)

// Multi-tenant defaults (docs/operations.md "Tenants").
const (
	// defaultTenantWebhookRate is a tenant's webhooks per second when its
	// Limits.WebhookRate is zero, in bursts of twice that: a PBX of a few
	// hundred managers sends a few a second; one past this is a flood.
	defaultTenantWebhookRate = 1000
	// tenantWatchInterval: how often the node looks for disabled tenants
	// among those it holds sessions of, besides the changes its registry
	// reports (issue 14: within a second).
	tenantWatchInterval = time.Second
	// unknownTenantLabel is the metrics' tenant label of a webhook to a
	// tenant path nobody owns; "_" cannot start a tenant ID.
	unknownTenantLabel = "_unknown"
	// tenantContactCacheSize numbers are cached per tenant on the embedded
	// broker (contacts.DefaultMemoryCacheSize for the default tenant): a
	// day's callers of a small company.
	tenantContactCacheSize = 1000
	// tenantFailureAddrs bounds the addresses one tenant's failed-login
	// budget remembers (about 150 bytes each; see guard.Failures).
	tenantFailureAddrs = 256
)

// tenants is the node's multi-tenant side: per tenant, its webhook scope
// (crm_token, scoped keys, contact look-up, rate), its PBX for /api, its
// origins and limits. Everything is built from the Directory on first use
// and rebuilt when the directory answers a new *Tenant; entries are bounded
// by the directory (prune drops the ones it no longer answers).
type tenants struct {
	dir    tenant.Directory
	log    *zap.Logger
	wh     *webhook.Handler
	budget time.Duration           // contact budget
	rdb    goredis.UniversalClient // contact cache on a cluster; nil: in-process per tenant
	http   *http.Client            // shared by the tenants' CRM look-ups
	now    func() time.Time

	unknown *webhook.Scope // refuses every token, in constant time
	sweep   time.Duration  // watch's interval

	mu    sync.Mutex
	state map[string]*tenantState // by ID; guarded by mu

	// Failed logins: a tenant's wrong crm_tokens charge a budget per address
	// of that tenant's own, so one tenant's stale token (or a disabled
	// tenant's PBX still posting) never blocks another tenant posting from
	// the same PBX servers. Webhooks to unknown tenants charge guard.
	guard    guard.Config               // Trusted and OnRefuse of the webhook's guard
	unknownH http.Handler               // webhooks to unknown tenants, behind the node's shared budget
	fails    map[string]http.Handler    // by tenant ID: its webhooks behind its budget; guarded by mu
	failures map[string]*guard.Failures // by tenant ID: that budget; guarded by mu

	// Forwarding of the tenants' call records: one forwarder each, its queue
	// in Redis (brokerRDB) or in a journal under dataDir/tenants/<id>,
	// running until close. Kept across a tenant's updates while its URL
	// stays; stopped when the URL changes or the tenant is gone.
	brokerRDB goredis.UniversalClient
	dataDir   string
	fwdCtx    context.Context
	fwdStop   context.CancelFunc
	fwdMu     sync.Mutex
	fwds      map[string]*tenantForward // by ID; guarded by fwdMu

	names *tenantNames // the tenants' real-name maps
}

// tenantForward is one tenant's running forwarder.
type tenantForward struct {
	url  string
	fwd  *forward.Forwarder
	file *forward.FileQueue // nil on Redis
	run  background         // its Run
}

// stop ends the forwarder's Run and closes its queue; records still queued
// stay there for the next one.
func (tf *tenantForward) stop() {
	tf.run.stop()
	if tf.file != nil {
		_ = tf.file.Close()
	}
}

// tenantState is what one version of a tenant needs at run time.
type tenantState struct {
	of      *tenant.Tenant
	scope   *webhook.Scope
	pbx     api.PBX
	crm     *contacts.CRM // nil without a contact URL
	origins auth.Origins
	limit   *rate.Limiter
}

func newTenants(dir tenant.Directory, log *zap.Logger, budget time.Duration, rdb, brokerRDB goredis.UniversalClient, dataDir string) *tenants {
	ts := &tenants{dir: dir, log: log.Named("tenants"), budget: budget, rdb: rdb,
		http: &http.Client{}, now: time.Now, state: map[string]*tenantState{},
		brokerRDB: brokerRDB, dataDir: dataDir, fwds: map[string]*tenantForward{}, sweep: tenantWatchInterval}
	ts.fwdCtx, ts.fwdStop = context.WithCancel(context.Background())
	ts.names = newTenantNames(rdb)
	// An unknown tenant's check does a known one's work (one random token
	// nobody has), so the answer's timing tells nobody which tenants exist.
	nobody := &tenant.Tenant{CRMTokens: []tenant.Secret{{Value: tenant.GenerateSecret()}}}
	ts.unknown = &webhook.Scope{Label: unknownTenantLabel, TokenOK: func(got string) bool {
		nobody.CRMTokenOK(got, ts.now())
		return false
	}}
	ts.fails, ts.failures = map[string]http.Handler{}, map[string]*guard.Failures{}
	return ts
}

// setGuard sets how webhooks are guarded: cfg's Trusted and OnRefuse for
// every tenant; unknown tenant paths share one budget, apart from the
// default tenant's (a removed tenant's PBX still posting blocks nobody
// else).
func (ts *tenants) setGuard(cfg guard.Config) {
	ts.guard = guard.Config{Trusted: cfg.Trusted, OnRefuse: cfg.OnRefuse}
	u := ts.guard
	u.Failures = guard.NewFailures(webhook.DefaultLoginFailures/60.0, webhook.DefaultLoginFailures, 0)
	ts.unknown.OnInvalidToken = func(r *http.Request) { u.Failures.Fail(guard.ClientIP(r, u.Trusted)) }
	ts.unknownH = guard.Wrap(u, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.wh.ServeScoped(w, r, ts.unknown)
	}))
}

// guarded returns tenant id's webhook handler behind its own failed-login
// budget, made once per tenant.
func (ts *tenants) guarded(id string) http.Handler {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if h := ts.fails[id]; h != nil {
		return h
	}
	cfg := ts.guard
	cfg.Failures = guard.NewFailures(webhook.DefaultLoginFailures/60.0, webhook.DefaultLoginFailures, tenantFailureAddrs)
	h := guard.Wrap(cfg, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st, ok := ts.get(id)
		if !ok { // removed meanwhile
			ts.wh.ServeScoped(w, r, ts.unknown)
			return
		}
		ts.wh.ServeScoped(w, r, st.scope)
	}))
	ts.fails[id] = h
	failures := cfg.Failures
	ts.failures[id] = failures
	return h
}

// get returns id's state, built or rebuilt as needed; ok=false for an ID the
// directory does not know.
func (ts *tenants) get(id string) (*tenantState, bool) {
	t, ok := ts.dir.Get(id)
	if !ok {
		return nil, false
	}
	ts.mu.Lock()
	st := ts.state[id]
	ts.mu.Unlock()
	if st != nil && st.of == t {
		return st, true
	}
	next := ts.build(t) // outside the lock: it may open a forward journal
	ts.mu.Lock()
	if cur := ts.state[id]; cur != nil && cur.of == t { // another request built it meanwhile
		ts.mu.Unlock()
		next.close()
		return cur, true
	}
	old := ts.state[id]
	ts.state[id] = next
	ts.mu.Unlock()
	if old != nil {
		old.close()
	}
	return next, true
}

// close releases what st holds of its own (the forwarder is the tenant's,
// shared across versions).
func (st *tenantState) close() {
	if st.crm != nil {
		_ = st.crm.Close()
	}
}

// forwarder returns t's running forwarder, started or restarted as its
// URL asks; nil without a URL, or when its queue cannot be opened (its
// records are then not forwarded, and the PBX still gets 200).
func (ts *tenants) forwarder(t *tenant.Tenant, log *zap.Logger) *forward.Forwarder {
	ts.fwdMu.Lock()
	defer ts.fwdMu.Unlock()
	cur := ts.fwds[t.ID]
	if cur != nil && cur.url == t.HistoryForwardURL {
		return cur.fwd
	}
	if cur != nil {
		cur.stop()
		delete(ts.fwds, t.ID)
	}
	if t.HistoryForwardURL == "" || ts.fwdCtx.Err() != nil {
		return nil
	}
	tf := &tenantForward{url: t.HistoryForwardURL}
	var q forward.Queue
	var err error
	if ts.brokerRDB != nil {
		// The tenant in the hash tag: its own keys, on one slot.
		q, err = forward.NewRedisQueue(ts.brokerRDB, forward.RedisConfig{Prefix: "{callpop:forward:" + t.ID + "}:"})
	} else {
		tf.file, err = forward.OpenFileQueue(filepath.Join(ts.dataDir, "tenants", t.ID), forward.FileConfig{}, log)
		q = tf.file
	}
	if err == nil {
		// No registerer: callpop_forward_* are the default tenant's;
		// tenantForwardMetrics exports this one's counts by tenant.
		tf.fwd, err = forward.New(forward.Config{URL: t.HistoryForwardURL}, q, log, nil)
	}
	if err != nil {
		if tf.file != nil {
			_ = tf.file.Close()
		}
		log.Warn("tenant's history forwarding not started", zap.Error(err))
		return nil
	}
	tf.run = goBackground(ts.fwdCtx, func(ctx context.Context) {
		if err := tf.fwd.Run(ctx); err != nil {
			log.Error("tenant's history forwarder stopped", zap.Error(err))
		}
	})
	ts.fwds[t.ID] = tf
	return tf.fwd
}

// build makes the state of t.
func (ts *tenants) build(t *tenant.Tenant) *tenantState {
	log := ts.log.With(zap.String("tenant", t.ID))
	st := &tenantState{of: t}
	enabled := t.Enabled
	st.scope = &webhook.Scope{Tenant: t.ID, Label: t.ID, TokenOK: func(got string) bool {
		return t.CRMTokenOK(got, ts.now()) && enabled
	}, OnInvalidToken: func(r *http.Request) { ts.fail(t.ID, r) }}
	r := t.Limits.WebhookRate
	if r <= 0 {
		r = defaultTenantWebhookRate
	}
	st.limit = rate.NewLimiter(rate.Limit(r), int(max(2*r, 1)))
	st.scope.Admit = st.limit.Allow
	st.pbx = &pbx.Client{} // answers 503 without a PBX
	var pbxClient *pbx.Client
	if t.PBXURL != "" {
		if c, err := pbx.New(pbx.Config{URL: t.PBXURL, Token: t.PBXToken, Logger: log.Named("pbx")}); err == nil {
			st.pbx, pbxClient = c, c
		} else {
			log.Warn("tenant's PBX URL refused; /api answers 503", zap.Error(err))
		}
	}
	if !t.Enabled {
		pbxClient = nil // a disabled tenant's webhooks are refused: no names to load
	}
	if nc := ts.names.of(t, pbxClient, log); nc != nil { // only here: a nil *Cache in the interface would not be nil
		st.scope.Names = nc
	}
	if t.ContactURL != "" {
		// In Redis under the tenant's keys on a cluster; else an in-process
		// cache of this tenant's alone, smaller than the default tenant's so
		// that many tenants on one node stay bounded.
		var cache contacts.Cache = contacts.NewMemoryCache(contacts.MemoryCacheConfig{Size: tenantContactCacheSize})
		if ts.rdb != nil {
			cache = scopedCache{rediscache.New(ts.rdb), t.ID}
		}
		crm, err := contacts.NewCRM(contacts.CRMConfig{URLTemplate: t.ContactURL, Timeout: ts.budget * 4 / 5, HTTPClient: ts.http}, cache, log)
		if err == nil {
			st.crm = crm
			st.scope.Dir = crm
		} else {
			log.Warn("tenant's contact URL refused; contacts unknown", zap.Error(err))
		}
	}
	if f := ts.forwarder(t, log); f != nil { // only here: a nil *Forwarder in the interface would not be nil
		st.scope.Forward = f
	}
	var err error
	if st.origins, err = auth.ParseOrigins(strings.Join(t.AllowedOrigins, ",")); err != nil {
		log.Warn("tenant's allowed origins refused; same origin only", zap.Error(err))
	}
	return st
}

// enabled reports whether id is a tenant the directory knows and enables.
func (ts *tenants) enabled(id string) bool {
	t, ok := ts.dir.Get(id)
	return ok && t.Enabled
}

// serveWebhook answers a webhook posted to tenant id's path. An unknown,
// disabled or wrong-token tenant gets the same 401: nobody learns which
// tenants exist.
func (ts *tenants) serveWebhook(w http.ResponseWriter, r *http.Request, id string) {
	if _, ok := ts.dir.Get(id); !ok {
		ts.unknownH.ServeHTTP(w, r)
		return
	}
	ts.guarded(id).ServeHTTP(w, r)
}

// fail charges a wrong crm_token to tenant id's budget for r's address.
func (ts *tenants) fail(id string, r *http.Request) {
	ts.mu.Lock()
	f := ts.failures[id]
	ts.mu.Unlock()
	f.Fail(guard.ClientIP(r, ts.guard.Trusted)) // a nil *Failures charges nothing
}

// pbxFor is /api's PBX of tenant id: an unconfigured one for a tenant
// without (or no longer with) a PBX, never the default tenant's.
func (ts *tenants) pbxFor(id string) api.PBX {
	if st, ok := ts.get(id); ok {
		return st.pbx
	}
	return &pbx.Client{}
}

// allowOrigin reports whether tenant id lists origin among its own.
func (ts *tenants) allowOrigin(id, origin string) bool {
	st, ok := ts.get(id)
	return ok && st.of.Enabled && st.origins.Allow(origin)
}

// maxSessions is tenant id's sessions-per-user cap; 0: the node's.
func (ts *tenants) maxSessions(id string) int {
	if t, ok := ts.dir.Get(id); ok {
		return t.Limits.SessionsPerUser
	}
	return 0
}

// gate refuses a socket whose tenant is no longer enabled (a ticket issued
// before the tenant was disabled), with the same 401 as a bad ticket.
func (ts *tenants) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id, ok := auth.FromContext(r.Context()); ok && id.Tenant != "" && !ts.enabled(id.Tenant) {
			jsonhttp.Fail(w, jsonhttp.ErrInvalidToken)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// watch is the node's one hook for tenant changes: it closes the sessions
// of tenants this node holds sessions of that are disabled or gone (close
// code 4502), and forgets the state of tenants the directory no longer
// answers the same. It does so at once for every change a registry reports
// (tenant.Watcher), and every sweep interval besides: a socket admitted
// just before its tenant was disabled may join the hub after that change
// was handled, and a directory that reports nothing is still followed. It
// returns when ctx ends.
func (ts *tenants) watch(ctx context.Context, h *hub.Hub) {
	changed := make(chan struct{}, 1)
	if w, ok := ts.dir.(tenant.Watcher); ok {
		// The registry calls back under its lock: signal only, and let
		// this goroutine close the sockets.
		stop := w.Watch(func(_, _ *tenant.Tenant) {
			select {
			case changed <- struct{}{}:
			default: // one pending signal covers every change so far
			}
		})
		defer stop()
	}
	t := time.NewTicker(ts.sweep)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		}
		ts.closeDisabled(h)
		ts.prune()
	}
}

// closeDisabled closes the sessions of every tenant with sessions on h that
// is no longer enabled.
func (ts *tenants) closeDisabled(h *hub.Hub) {
	for _, id := range h.Tenants() {
		if !ts.enabled(id) {
			n := h.CloseTenant(id, event.CloseTenantDisabled, "tenant disabled")
			ts.log.Info("tenant disabled; its sessions closed", zap.String("tenant", id), zap.Int("sessions", n))
		}
	}
}

// prune forgets the state of tenants the directory answers differently.
func (ts *tenants) prune() {
	var stale []*tenantState
	ts.mu.Lock()
	for id, st := range ts.state {
		if t, ok := ts.dir.Get(id); !ok || t != st.of {
			delete(ts.state, id)
			stale = append(stale, st)
		}
	}
	for id := range ts.fails {
		if _, ok := ts.dir.Get(id); !ok {
			delete(ts.fails, id)
			delete(ts.failures, id)
		}
	}
	ts.mu.Unlock()
	for _, st := range stale {
		st.close()
	}
	ts.fwdMu.Lock()
	for id, tf := range ts.fwds {
		if _, ok := ts.dir.Get(id); !ok { // a disabled tenant's queue still drains
			tf.stop()
			delete(ts.fwds, id)
		}
	}
	ts.fwdMu.Unlock()
	ts.names.keep(ts.enabled)
}

// close stops every tenant's forwarder and releases its look-ups. No
// webhook may be served any more.
func (ts *tenants) close() {
	ts.fwdStop()
	ts.names.stop()
	ts.fwdMu.Lock()
	for id, tf := range ts.fwds {
		tf.stop()
		delete(ts.fwds, id)
	}
	ts.fwdMu.Unlock()
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for id, st := range ts.state {
		st.close()
		delete(ts.state, id)
	}
}

// background is a tenant's goroutine (its forwarder, its names), stopped
// and waited for as one.
type background struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// goBackground runs fn until parent ends or stop is called.
func goBackground(parent context.Context, fn func(ctx context.Context)) background {
	ctx, cancel := context.WithCancel(parent)
	b := background{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		fn(ctx)
	}()
	return b
}

// stop ends fn and waits for it to return.
func (b background) stop() {
	b.cancel()
	<-b.done
}

// scopedCache keeps one tenant's contact answers under its own keys in a
// cache shared by tenants (Redis): the same number in two tenants is two
// entries.
type scopedCache struct {
	c  contacts.Cache
	id string
}

func (s scopedCache) Get(ctx context.Context, phone string) (contacts.Answer, bool, error) {
	return s.c.Get(ctx, tenant.Key(s.id, phone))
}

func (s scopedCache) Set(ctx context.Context, phone string, a contacts.Answer, ttl time.Duration) error {
	return s.c.Set(ctx, tenant.Key(s.id, phone), a, ttl)
}

// tenantPath returns the tenant ID of a webhook posted to /webhook/{id} or
// /{id}: an ID is 1–253 characters of [a-z0-9.-].
func tenantPath(p string) (string, bool) {
	id, ok := strings.CutPrefix(p, "/webhook/")
	if !ok {
		id = strings.TrimPrefix(p, "/")
	}
	if id == "" || len(id) > 253 {
		return "", false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return "", false
		}
	}
	return id, true
}

// tenantForwardMetrics exports each forwarder's counts by tenant: the
// default tenant's as _default, and every tenant's whose forwarder runs on
// this node, at 0 from its start. The label values are the forwarders'
// tenants, bounded by the registry; a tenant's series go when its
// forwarder stops (removed, or its URL gone) and restart from 0 with a new
// URL.
type tenantForwardMetrics struct {
	ts  *tenants
	def *forward.Forwarder // the default tenant's; nil without one

	delivered, failed, queued, dead *prometheus.Desc
}

func newTenantForwardMetrics(ts *tenants, def *forward.Forwarder) *tenantForwardMetrics {
	label := []string{"tenant"}
	return &tenantForwardMetrics{ts: ts, def: def,
		delivered: prometheus.NewDesc("callpop_tenant_forward_delivered_total",
			"Call records the tenant's CRM took, by tenant (_default: the default tenant).", label, nil),
		failed: prometheus.NewDesc("callpop_tenant_forward_failed_total",
			"POSTs of call records the tenant's CRM did not take (retried, or moved to the dead letters), by tenant.", label, nil),
		queued: prometheus.NewDesc("callpop_tenant_forward_queued",
			"Call records waiting for the tenant's CRM (as of the last look at its queue), by tenant.", label, nil),
		dead: prometheus.NewDesc("callpop_tenant_forward_dead_letters",
			"Call records in the tenant's dead letters, waiting for an operator, by tenant.", label, nil),
	}
}

func (m *tenantForwardMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.delivered
	ch <- m.failed
	ch <- m.queued
	ch <- m.dead
}

func (m *tenantForwardMetrics) Collect(ch chan<- prometheus.Metric) {
	emit := func(label string, f *forward.Forwarder) {
		c := f.Counts()
		ch <- prometheus.MustNewConstMetric(m.delivered, prometheus.CounterValue, float64(c.Delivered), label)
		ch <- prometheus.MustNewConstMetric(m.failed, prometheus.CounterValue, float64(c.Failed), label)
		ch <- prometheus.MustNewConstMetric(m.queued, prometheus.GaugeValue, float64(c.Queued), label)
		ch <- prometheus.MustNewConstMetric(m.dead, prometheus.GaugeValue, float64(c.Dead), label)
	}
	if m.def != nil {
		emit(hub.DefaultTenantLabel, m.def)
	}
	m.ts.fwdMu.Lock()
	running := make(map[string]*forward.Forwarder, len(m.ts.fwds))
	for id, tf := range m.ts.fwds {
		running[id] = tf.fwd
	}
	m.ts.fwdMu.Unlock()
	for id, f := range running {
		emit(id, f)
	}
}
