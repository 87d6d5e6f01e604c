package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callpop/callpop/broker/redis"
	"github.com/callpop/callpop/tenant"
	"github.com/callpop/callpop/tenant/admin"
	"github.com/callpop/callpop/tenant/file"
	tredis "github.com/callpop/callpop/tenant/redis"
)

// tenantConfig is the tenant registry's part of config: where the registry
// lives and the admin API's token. Embedded in config.
type tenantConfig struct {
	TenantsFile    string
	TenantsRedis   bool
	AdminToken     string
	AdminTokenFile string

	adminToken string // from AdminToken or AdminTokenFile
}

// tenantFlags registers the registry's settings on f.
func (c *config) tenantFlags(f *flagSet) {
	f.String(&c.TenantsFile, "tenants-file", "CALLPOP_TENANTS_FILE", "", "JSON file of the tenant registry, on the embedded broker; empty = single tenant")
	// A switch with an environment twin (CALLPOP_TENANTS_REDIS=true), as
	// container deployments set everything through the environment.
	f.add("tenants-redis", "CALLPOP_TENANTS_REDIS", "serve the tenant registry kept in Redis (with --redis-url)", (*boolValue)(&c.TenantsRedis))
	f.String(&c.AdminTokenFile, "admin-token-file", "CALLPOP_ADMIN_TOKEN_FILE", "", "file holding the admin API's token; with neither it nor CALLPOP_ADMIN_TOKEN the admin API is off")
	f.String(&c.AdminToken, "admin-token", "CALLPOP_ADMIN_TOKEN", "", fmt.Sprintf("the admin API's token, ≥ %d characters: set the environment variable or the file, not the flag (shell history)", admin.MinTokenLen))
}

// validateTenants checks the registry's settings.
func (c *config) validateTenants() error {
	if c.TenantsFile != "" && c.RedisURL != "" {
		return errors.New("--tenants-file (CALLPOP_TENANTS_FILE): not with --redis-url, where the registry is in Redis: set --tenants-redis (CALLPOP_TENANTS_REDIS=true) instead")
	}
	if c.TenantsRedis && c.RedisURL == "" {
		return errors.New("--tenants-redis (CALLPOP_TENANTS_REDIS): needs --redis-url (CALLPOP_REDIS_URL); on the embedded broker use --tenants-file")
	}
	switch {
	case c.AdminToken != "" && c.AdminTokenFile != "":
		return errors.New("--admin-token and --admin-token-file (CALLPOP_ADMIN_TOKEN, CALLPOP_ADMIN_TOKEN_FILE): set one")
	case c.AdminTokenFile != "":
		b, err := os.ReadFile(c.AdminTokenFile)
		if err != nil {
			return fmt.Errorf("--admin-token-file (CALLPOP_ADMIN_TOKEN_FILE): %w", err)
		}
		c.adminToken = strings.TrimSpace(string(b))
	default:
		c.adminToken = c.AdminToken
	}
	if c.adminToken == "" {
		return nil
	}
	if len(c.adminToken) < admin.MinTokenLen {
		return fmt.Errorf("--admin-token (CALLPOP_ADMIN_TOKEN): at least %d characters", admin.MinTokenLen)
	}
	if c.AdminAddr == "" {
		return errors.New("--admin-token (CALLPOP_ADMIN_TOKEN): the admin API is served on the admin listener; set --admin-addr (CALLPOP_ADMIN_ADDR)")
	}
	if c.TenantsFile == "" && !c.TenantsRedis {
		return errors.New("--admin-token (CALLPOP_ADMIN_TOKEN): the admin API manages the tenant registry; set --tenants-file (CALLPOP_TENANTS_FILE) or --tenants-redis (CALLPOP_TENANTS_REDIS)")
	}
	return nil
}

// tenantRegistry is a node's tenant registry: its store, kept current by a
// goroutine until close.
type tenantRegistry struct {
	store tenant.Manager
	reg   *tenant.Registry        // the store's registry in memory
	rdb   goredis.UniversalClient // the store's own client on Redis; nil on a file
	stop  context.CancelFunc
	done  chan struct{}
}

// runner is a store that follows its source until ctx ends.
type runner interface {
	Run(ctx context.Context) error
}

// openTenantRegistry builds the registry cfg names — the file
// --tenants-file, or Redis with --tenants-redis — and starts keeping it
// current; its directory is what the node's routing serves. Without either
// it returns nil: the node serves the default tenant only.
func (s *server) openTenantRegistry(cfg *config) (tenant.Directory, error) {
	t := &tenantRegistry{done: make(chan struct{})}
	log := s.log
	where := ""
	switch {
	case cfg.TenantsRedis:
		where = "redis"
		rdb, err := redis.NewClient(cfg.RedisURL)
		if err != nil {
			return nil, err
		}
		t.rdb = rdb
		st := tredis.New(rdb, tredis.Config{}, log)
		// A short wait: a node starts while Redis is down (Run loads the
		// registry as soon as it answers).
		lctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := st.Load(lctx); err != nil {
			log.Warn("tenant registry not loaded yet; Redis unreachable", zap.Error(err))
		}
		cancel()
		t.store, t.reg = st, st.Registry()
	case cfg.TenantsFile != "":
		where = "file"
		st, err := file.Open(cfg.TenantsFile, file.Config{}, log)
		if err != nil {
			return nil, fmt.Errorf("--tenants-file (CALLPOP_TENANTS_FILE): %w", err)
		}
		t.store, t.reg = st, st.Registry()
	default:
		return nil, nil
	}
	t.store.Watch(logTenantChange(log.Named("tenants")))
	ctx, cancel := context.WithCancel(context.Background())
	t.stop = cancel
	go func() {
		defer close(t.done)
		if r, ok := t.store.(runner); ok {
			_ = r.Run(ctx)
		}
	}()
	s.tenantReg = t
	log.Info("tenant registry", zap.String("store", where), zap.Int("tenants", t.reg.Len()))
	return t.reg, nil
}

// close stops following changes and releases the store.
func (t *tenantRegistry) close() {
	if t == nil {
		return
	}
	t.stop()
	<-t.done
	_ = t.store.Close()
	if t.rdb != nil {
		_ = t.rdb.Close()
	}
}

// logTenantChange logs each change the node applies (IDs and the enabled
// flag: nothing secret).
func logTenantChange(log *zap.Logger) tenant.WatchFunc {
	return func(old, new *tenant.Tenant) {
		switch {
		case old == nil:
			log.Info("tenant added", zap.String("tenant", new.ID), zap.Bool("enabled", new.Enabled))
		case new == nil:
			log.Info("tenant removed", zap.String("tenant", old.ID))
		case old.Enabled != new.Enabled:
			log.Info("tenant enabled changed", zap.String("tenant", new.ID), zap.Bool("enabled", new.Enabled))
		default:
			log.Info("tenant changed", zap.String("tenant", new.ID))
		}
	}
}

// adminHandler is the admin API for the admin listener, nil when no admin
// token is configured (the API is off).
func (s *server) adminHandler() (http.Handler, error) {
	if s.cfg.adminToken == "" || s.tenantReg == nil {
		return nil, nil
	}
	return admin.New(admin.Config{Token: s.cfg.adminToken, Store: s.tenantReg.store}, s.log)
}
