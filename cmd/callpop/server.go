package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callpop/callpop/api"
	"github.com/callpop/callpop/auth"
	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/contacts/rediscache"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/forward"
	"github.com/callpop/callpop/hub"
	"github.com/callpop/callpop/internal/guard"
	"github.com/callpop/callpop/internal/jsonhttp"
	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/names"
	"github.com/callpop/callpop/tenant"
	"github.com/callpop/callpop/webhook"
	"github.com/callpop/callpop/widget"
)

// server is one callpop node: the wiring of broker, webhook, hub and routes.
type server struct {
	cfg    *config
	log    *zap.Logger
	broker event.Broker
	rdb    goredis.UniversalClient // nil on the embedded broker
	// crm and contactRDB exist when contacts are looked up in the CRM.
	crm        *contacts.CRM
	contactRDB goredis.UniversalClient
	// fwd forwards call records to the CRM, when configured; fwdFile is its
	// queue on the embedded broker.
	fwd     *forward.Forwarder
	fwdFile *forward.FileQueue
	// names gives PBX logins' real names when a PBX is configured; it is
	// shared through Redis on a cluster.
	names   *names.Cache
	hub     *hub.Hub
	api     *api.API
	jwt     *auth.JWT
	tokens  auth.Verifier // jwt, or auth.Tenants with tenants
	tickets *auth.Tickets
	// tenants is the multi-tenant side; nil for a single tenant.
	tenants *tenants
	// legacyTokens counts sockets opened with the token in the URL.
	legacyTokens prometheus.Counter
	registry     *prometheus.Registry
	handler      http.Handler
	draining     atomic.Bool
	fresh        *freshConns // connections without a request yet, closed by a drain
	refusals     *refusals   // every refused request, counted; the widget-facing ones logged

	// loginFailures is the webhook's failed-login budget per source address.
	loginFailures *guard.Failures
	// tenantReg is the tenant registry (tenantreg.go); nil for a single tenant.
	tenantReg *tenantRegistry
}

// serverOptions are what a mode or a test adds to what cfg says.
type serverOptions struct {
	// broker, when set, is used instead of one built from cfg (tests share
	// one embedded broker between nodes).
	broker event.Broker
	// directory, when set, answers contacts instead of cfg.Contacts.
	directory event.Directory
	// routes adds a mode's own routes (demo).
	routes func(s *server, r *httprouter.Router)
	// tenants, when set, serves the tenants it knows beside the default
	// tenant (the flags' configuration): webhooks at /webhook/{tenant} and
	// /{tenant}, widget tokens with a tid claim. Nil: the registry cfg
	// names (--tenants-file, --tenants-redis; tenantreg.go), if any, else
	// one tenant only.
	tenants tenant.Directory
	// tenantSweep is how often the node looks for disabled tenants besides
	// the changes the directory reports; zero means tenantWatchInterval.
	tenantSweep time.Duration
}

// newServer builds a node from cfg and opt.
func newServer(cfg *config, log *zap.Logger, opt serverOptions) (*server, error) {
	broker := opt.broker
	s := &server{cfg: cfg, log: log, registry: prometheus.NewRegistry(), fresh: newFreshConns()}
	s.refusals = newRefusals(s.registry, log, cfg)
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newBuildInfo())
	var err error
	if s.jwt, err = auth.NewJWT(cfg.JWTSecret); err != nil {
		return nil, err
	}
	s.tokens = s.jwt
	if opt.tenants == nil {
		// On failure nothing is open yet: no close needed.
		if opt.tenants, err = s.openTenantRegistry(cfg); err != nil {
			return nil, err
		}
	}
	if opt.tenants != nil {
		s.tokens = auth.NewTenants(s.jwt, opt.tenants)
	}
	switch {
	case broker != nil:
		s.broker = broker
	case cfg.RedisURL != "":
		if s.rdb, err = redis.NewClient(cfg.RedisURL); err != nil {
			return nil, err
		}
		s.broker = redis.New(s.rdb, redis.Config{Registerer: s.registry}, log)
	default:
		s.broker = memory.New(memory.Config{})
	}
	dir, err := s.directory(cfg, opt.directory)
	if err != nil {
		s.close()
		return nil, err
	}
	pbxClient, err := pbx.New(pbx.Config{URL: cfg.PBXURL, Token: cfg.PBXToken, Logger: log.Named("pbx")})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("--pbx-url, --pbx-token (CALLPOP_PBX_URL, CALLPOP_PBX_TOKEN): %w", err)
	}
	s.loginFailures = guard.NewFailures(webhook.DefaultLoginFailures/60.0, webhook.DefaultLoginFailures, 0)
	whCfg := webhook.Config{CRMToken: cfg.CRMToken, ContactBudget: cfg.ContactBudget, Tenants: opt.tenants != nil,
		OnInvalidToken: func(r *http.Request) { s.loginFailures.Fail(guard.ClientIP(r, cfg.trusted)) }}
	if cfg.HistoryForwardURL != "" {
		if err := s.forwarder(cfg); err != nil {
			s.close()
			return nil, err
		}
		whCfg.Forward = s.fwd // only here: a nil *Forwarder in the interface would not be nil
	}
	if pbxClient.Configured() { // without a PBX, names stay empty
		ncfg := names.Config{Redis: s.rdb} // nil on the embedded broker
		s.names = names.New(pbxClient, ncfg, log)
		whCfg.Names = s.names
	}
	wh, err := webhook.New(whCfg, s.broker, dir, log, s.registry)
	if err != nil {
		s.close()
		return nil, err
	}
	if opt.tenants != nil {
		if err := s.newTenants(cfg, opt.tenants, wh); err != nil {
			s.close()
			return nil, err
		}
		if opt.tenantSweep > 0 {
			s.tenants.sweep = opt.tenantSweep
		}
		s.registry.MustRegister(newTenantForwardMetrics(s.tenants, s.fwd))
	}
	origins := cfg.origins.WithTrustedProxies(cfg.trusted)
	checkOrigin := func(r *http.Request) bool {
		ok := origins.AllowRequest(r)
		if id, known := auth.FromContext(r.Context()); !ok && known && id.Tenant != "" && s.tenants != nil {
			ok = s.tenants.allowOrigin(id.Tenant, r.Header.Get("Origin"))
		}
		if !ok {
			s.refusals.origin("ws", r.Header.Get("Origin"))
		}
		return ok
	}
	allowOrigin := func(origin string) bool {
		ok := origins.Allow(origin)
		if !ok {
			s.refusals.origin("api", origin)
		}
		return ok
	}
	hcfg := hub.Config{CheckOrigin: checkOrigin, MaxSessionsPerUser: cfg.maxSessions}
	acfg := api.Config{AllowOrigin: allowOrigin, TrustedProxies: cfg.trusted}
	if s.tenants != nil {
		hcfg.MaxSessionsFor, hcfg.TenantMetrics = s.tenants.maxSessions, true
		acfg.PBXFor = s.tenants.pbxFor
		acfg.AllowTenantOrigin = func(id, origin string) bool {
			ok := s.tenants.allowOrigin(id, origin)
			if !ok {
				s.refusals.origin("api", origin)
			}
			return ok
		}
	}
	s.hub = hub.New(hcfg, s.broker, log, s.registry)
	s.tickets = auth.NewTickets(s.broker, 0)
	acfg.Tickets = s.tickets
	s.api = api.New(acfg, pbxClient, s.broker, log)
	s.handler = s.routes(wh, opt.routes)
	return s, nil
}

func (s *server) routes(wh http.Handler, extra func(*server, *httprouter.Router)) http.Handler {
	r := httprouter.New()
	r.RedirectTrailingSlash = false
	r.HandleMethodNotAllowed = true
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		jsonhttp.Fail(w, jsonhttp.ErrMethodNotAllowed)
	})
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		jsonhttp.Fail(w, jsonhttp.ErrNotFound)
	})
	webhookLimit := guard.NewPerIP(s.cfg.webhookRate, int(2*s.cfg.webhookRate)) // one per address, whichever tenant it posts for
	wh = guard.Wrap(guard.Config{Trusted: s.cfg.trusted, Allow: s.cfg.webhookAllow,
		Limit: webhookLimit, Failures: s.loginFailures,
		OnRefuse: s.refusals.counter("webhook")}, wh)
	// Widgets before socket tickets sent their token in /ws?token=; they are
	// served for one more release and counted, so operators know when the
	// last cached old widget.js is gone.
	s.legacyTokens = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "callpop_ws_legacy_token_total",
		Help: "Sockets opened with the token in the URL (widgets older than socket tickets); deprecated.",
	})
	s.registry.MustRegister(s.legacyTokens)
	var sockets http.Handler = s.hub
	if s.tenants != nil {
		sockets = s.tenants.gate(s.hub)
	}
	ws := guard.Wrap(guard.Config{Trusted: s.cfg.trusted,
		Limit: guard.NewPerIP(s.cfg.connectRate, int(2*s.cfg.connectRate)), OnRefuse: s.refusals.counter("ws")},
		auth.RequireSocketUser(s.tokens, s.tickets, auth.SocketOptions{Legacy: s.legacyTokens.Inc, Refused: s.refusals.request("ws")}, sockets))
	// The PBX's single entry point, also at / for cabinets that take a host only.
	r.Handler(http.MethodPost, "/webhook", wh)
	r.Handler(http.MethodPost, "/", wh)
	r.Handler(http.MethodGet, "/ws", ws)
	// Static files and probes answer HEAD too (load balancers and caches
	// ask it); other methods get the router's JSON 405. The widget's files
	// admit cross-origin reads only from allowed origins: a same-origin page
	// needs no CORS header.
	getOrHead := func(path string, h http.Handler) {
		r.Handler(http.MethodGet, path, h)
		r.Handler(http.MethodHead, path, h)
	}
	getOrHead("/widget.js", widget.Handler(s.cfg.origins.Allow))
	getOrHead("/widget-panel.js", widget.PanelHandler(s.cfg.origins.Allow))
	getOrHead("/widget.css", widget.StyleHandler(s.cfg.origins.Allow))
	for _, rt := range s.api.Routes(auth.RequireUser(s.tokens, s.refusals.request("api"))) {
		handleWithPathValues(r, rt.Method, rt.Path, rt.Handler)
	}
	getOrHead("/healthz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		jsonhttp.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	getOrHead("/readyz", http.HandlerFunc(s.ready))
	r.Handler(http.MethodGet, "/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	if extra != nil {
		extra(s, r)
	}
	if s.tenants == nil {
		return r
	}
	// A tenant's PBX posts to /webhook/{tenant} or /{tenant}: paths no route
	// of the node takes, so they are matched before the router (httprouter
	// cannot hold a wildcard beside static routes), behind the same guard.
	// Each tenant's failed logins have a budget of their own (tenants.guarded).
	tenantGuard := guard.Config{Trusted: s.cfg.trusted, Allow: s.cfg.webhookAllow,
		Limit: webhookLimit, OnRefuse: s.refusals.counter("webhook")}
	s.tenants.setGuard(tenantGuard)
	tenantWH := guard.Wrap(tenantGuard,
		http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			id, _ := tenantPath(req.URL.Path)
			s.tenants.serveWebhook(w, req, id)
		}))
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method == http.MethodPost && !routed(r, req.URL.Path) {
			if _, ok := tenantPath(req.URL.Path); ok {
				tenantWH.ServeHTTP(w, req)
				return
			}
		}
		r.ServeHTTP(w, req)
	})
}

// routed reports whether the router has a route for path, by any method.
func routed(r *httprouter.Router, path string) bool {
	for _, m := range []string{http.MethodPost, http.MethodGet, http.MethodPut} {
		if h, _, _ := r.Lookup(m, path); h != nil {
			return true
		}
	}
	return false
}

// newTenants builds the multi-tenant side over dir.
func (s *server) newTenants(cfg *config, dir tenant.Directory, wh *webhook.Handler) error {
	var rdb goredis.UniversalClient
	if cfg.RedisURL != "" {
		if s.contactRDB == nil {
			opt, err := redis.ParseClientURL(cfg.RedisURL)
			if err != nil {
				return err
			}
			opt.ContextTimeoutEnabled = true // as in directory: a stalled Redis must not eat the budget
			opt.PoolSize = 8
			s.contactRDB = goredis.NewUniversalClient(opt)
		}
		rdb = s.contactRDB
	}
	s.tenants = newTenants(dir, s.log, cfg.ContactBudget, rdb, s.rdb, cfg.DataDir)
	s.tenants.wh = wh
	return nil
}

// handleWithPathValues routes method and path — whose {name} segments are
// wildcards, as in http.ServeMux patterns — to h, which reads them with
// r.PathValue(name) as it would behind a ServeMux: packages describe their
// routes without knowing the node's router.
func handleWithPathValues(r *httprouter.Router, method, path string, h http.Handler) {
	segs := strings.Split(path, "/")
	for i, seg := range segs {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			segs[i] = ":" + seg[1:len(seg)-1]
		}
	}
	r.Handle(method, strings.Join(segs, "/"), func(w http.ResponseWriter, req *http.Request, ps httprouter.Params) {
		for _, p := range ps {
			req.SetPathValue(p.Key, p.Value)
		}
		h.ServeHTTP(w, req)
	})
}

// ready answers 200 while the broker is reachable and the node not draining.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		jsonhttp.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.broker.Ready(ctx); err != nil {
		jsonhttp.Write(w, http.StatusServiceUnavailable, map[string]string{"status": "broker unavailable"})
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]string{"status": "ready"})
}

// httpServer returns the http.Server for s: header and body timeouts guard
// against slow clients; sockets clear them for themselves (hub).
func (s *server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
}

// serve runs s on ln until ctx ends, then drains: readiness goes false, the
// listener closes, sockets get CloseRestart, and the broker closes.
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	srv := s.httpServer()
	srv.ConnState = s.fresh.connState
	errc := make(chan error, 1)
	go func() {
		if s.cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, s.cfg.TLSCert, s.cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	fctx, stopForward := context.WithCancel(context.Background())
	fwdDone := make(chan error, 1)
	if s.fwd != nil {
		go func() { fwdDone <- s.fwd.Run(fctx) }()
	} else {
		fwdDone <- nil
	}
	tenantsDone := make(chan struct{})
	if s.tenants != nil {
		go func() { s.tenants.watch(fctx, s.hub); close(tenantsDone) }()
	} else {
		close(tenantsDone)
	}
	namesDone := make(chan error, 1)
	if s.names != nil {
		go func() { namesDone <- s.names.Run(fctx) }()
	} else {
		namesDone <- nil
	}
	// stopForwarding ends the forwarder once no webhook can enqueue any
	// more, and the names refresh with it.
	stopForwarding := func() {
		stopForward()
		if err := <-fwdDone; err != nil {
			s.log.Error("history forwarder stopped", zap.Error(err))
		}
		<-namesDone // Run returns nil when its context ends
		<-tenantsDone
	}
	s.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", s.cfg.TLSCert != ""),
		zap.Bool("redis", s.rdb != nil))
	select {
	case err := <-errc:
		_ = s.hub.Shutdown(context.Background())
		stopForwarding()
		s.close()
		return err
	case <-ctx.Done():
	}
	s.log.Info("draining")
	s.draining.Store(true)
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// Sockets are closed as soon as the listener is: http.Server.Shutdown
	// does not touch hijacked connections. Connections that never sent a
	// request are closed after a short grace (see freshConns): Shutdown alone
	// would wait five seconds for each.
	hubDone := make(chan error, 1)
	srv.RegisterOnShutdown(func() { hubDone <- s.hub.Shutdown(dctx) })
	shutDone, freshClosed := make(chan struct{}), make(chan int, 1)
	go func() { freshClosed <- s.fresh.closeAfterGrace(shutDone) }()
	err := srv.Shutdown(dctx)
	close(shutDone)
	if n := <-freshClosed; n > 0 {
		s.log.Info("closed connections that sent no request", zap.Int("count", n))
	}
	if herr := <-hubDone; herr != nil {
		err = errors.Join(err, fmt.Errorf("hub: %w", herr))
	}
	stopForwarding()
	s.close()
	s.log.Info("stopped")
	return err
}

// directory builds the contact directory: the CRM look-up first when
// --contact-url is set (cached in Redis on a cluster), the built-in CSV
// directory as the fallback when the CRM fails, is slow or does not know.
func (s *server) directory(cfg *config, given event.Directory) (event.Directory, error) {
	if given != nil {
		return given, nil
	}
	var csv event.Directory // stays a nil interface without a file
	if cfg.Contacts != "" {
		d, err := contacts.LoadFile(cfg.Contacts)
		if err != nil {
			return nil, fmt.Errorf("--contacts (CALLPOP_CONTACTS): %w", err)
		}
		s.log.Info("contact directory loaded", zap.Int("numbers", d.Len()))
		csv = d
	}
	if cfg.ContactURL == "" {
		return csv, nil
	}
	var cache contacts.Cache // nil: an in-process cache
	if cfg.RedisURL != "" {
		opt, err := redis.ParseClientURL(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		// A small client of its own that honours context deadlines, so a
		// stalled Redis cannot eat the contact budget.
		opt.ContextTimeoutEnabled = true
		opt.PoolSize = 8
		s.contactRDB = goredis.NewUniversalClient(opt)
		cache = rediscache.New(s.contactRDB)
	}
	crm, err := contacts.NewCRM(contacts.CRMConfig{
		URLTemplate: cfg.ContactURL,
		Timeout:     cfg.ContactBudget * 4 / 5, // leaves the fallback its turn within the budget
	}, cache, s.log)
	if err != nil {
		return nil, fmt.Errorf("--contact-url (CALLPOP_CONTACT_URL): %w", err)
	}
	s.crm = crm
	if csv == nil {
		return crm, nil
	}
	return contacts.Chain(crm, csv), nil
}

// forwarder builds the history forwarder: its queue in Redis on a cluster,
// in a journal under --data-dir on the embedded broker.
func (s *server) forwarder(cfg *config) error {
	var q forward.Queue
	var err error
	if s.rdb != nil {
		if q, err = forward.NewRedisQueue(s.rdb, forward.RedisConfig{}); err != nil {
			return fmt.Errorf("--history-forward-url (CALLPOP_HISTORY_FORWARD_URL): %w", err)
		}
	} else {
		if s.fwdFile, err = forward.OpenFileQueue(cfg.DataDir, forward.FileConfig{}, s.log); err != nil {
			return fmt.Errorf("--data-dir (CALLPOP_DATA_DIR): %w", err)
		}
		q = s.fwdFile
	}
	if s.fwd, err = forward.New(forward.Config{URL: cfg.HistoryForwardURL}, q, s.log, s.registry); err != nil {
		return fmt.Errorf("--history-forward-url (CALLPOP_HISTORY_FORWARD_URL): %w", err)
	}
	return nil
}

// close releases the forward queue, the CRM look-up, the broker and the
// Redis clients; the hub must be shut down first.
func (s *server) close() {
	if s.tenants != nil {
		s.tenants.close()
	}
	s.tenantReg.close() // after the routing side, which reads it
	if s.fwdFile != nil {
		_ = s.fwdFile.Close()
	}
	if s.crm != nil {
		_ = s.crm.Close()
	}
	if s.contactRDB != nil {
		_ = s.contactRDB.Close()
	}
	s.closeBroker()
}

func (s *server) closeBroker() {
	_ = s.broker.Close()
	if s.rdb != nil {
		_ = s.rdb.Close()
	}
}
