package main

import (
	"context"
	"sync"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/names"
	"github.com/callpop/callpop/tenant"
)

// tenantNamesMax bounds a tenant's login → real name map: far above a
// company's staff, far below the default tenant's 10,000, so that many tenants
// on one node stay bounded.
const tenantNamesMax = 2000

// tenantNames runs each tenant's real-name map (the accounts of its own PBX),
// as the default tenant's runs for --pbx-url: started on the tenant's first
// webhook or /api call, refreshed in the background, shared in Redis under
// a key of the tenant's, restarted when its PBX changes and stopped when the
// tenant is disabled or gone.
type tenantNames struct {
	rdb   goredis.UniversalClient // shares each map between nodes; nil: per node
	ctx   context.Context
	mu    sync.Mutex
	byID  map[string]*tenantNamesRun // guarded by mu
	close context.CancelFunc
}

// tenantNamesRun is one tenant's running map.
type tenantNamesRun struct {
	url, token string // the PBX it loads from
	cache      *names.Cache
	run        background // its Run
}

func newTenantNames(rdb goredis.UniversalClient) *tenantNames {
	n := &tenantNames{rdb: rdb, byID: map[string]*tenantNamesRun{}}
	n.ctx, n.close = context.WithCancel(context.Background())
	return n
}

// of returns t's map loading from c, started or restarted as t's PBX asks;
// nil when t has no PBX or the node is closing.
func (n *tenantNames) of(t *tenant.Tenant, c *pbx.Client, log *zap.Logger) *names.Cache {
	n.mu.Lock()
	defer n.mu.Unlock()
	cur := n.byID[t.ID]
	if cur != nil && cur.url == t.PBXURL && cur.token == t.PBXToken {
		return cur.cache
	}
	if cur != nil {
		cur.run.stop()
		delete(n.byID, t.ID)
	}
	if c == nil || n.ctx.Err() != nil {
		return nil
	}
	cfg := names.Config{MaxEntries: tenantNamesMax, Key: names.Key + ":" + t.ID}
	if n.rdb != nil {
		cfg.Redis = n.rdb
	}
	r := &tenantNamesRun{url: t.PBXURL, token: t.PBXToken, cache: names.New(c, cfg, log)}
	r.run = goBackground(n.ctx, func(ctx context.Context) {
		_ = r.cache.Run(ctx) // nil when ctx ends; failures are logged and retried
	})
	n.byID[t.ID] = r
	return r.cache
}

// keep stops the maps of tenants for which live is false (gone or disabled).
func (n *tenantNames) keep(live func(id string) bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, r := range n.byID {
		if !live(id) {
			r.run.stop()
			delete(n.byID, id)
		}
	}
}

// stop ends every tenant's map; none is started after it.
func (n *tenantNames) stop() {
	n.close()
	n.keep(func(string) bool { return false })
}
