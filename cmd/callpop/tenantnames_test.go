package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/internal/redistest"
	"github.com/callpop/callpop/pbx/names"
	"github.com/callpop/callpop/tenant"
)

// loaded is how many names n holds for tenant id (0: none, or not started).
func (n *tenantNames) loaded(id string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.byID[id]; r != nil {
		return r.cache.Len()
	}
	return 0
}

// Each tenant's popups carry the real names of its own PBX's staff: two
// tenants whose PBXs both have an "andy" show each its own andy, and on
// Redis each map is shared under a key of its tenant's.
func TestTenantsShowTheirOwnPBXsRealNames(t *testing.T) {
	t.Parallel()
	for _, kind := range brokers {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			testTenantsRealNames(t, kind)
		})
	}
}

func testTenantsRealNames(t *testing.T, kind string) {
	acme, acmeT := newFakeTenant(t, "acme.example", "Acme Ltd")
	globex, globexT := newFakeTenant(t, "globex.example", "Globex Corp")
	dir := tenant.NewStatic(acmeT, globexT)
	var a, b *tenantNode
	var rs *redistest.Server
	switch kind {
	case "memory":
		shared := memory.New(memory.Config{})
		a = startTenantNode(t, testConfig(t, "--data-dir", t.TempDir()), shared, dir)
		b = startTenantNode(t, testConfig(t, "--data-dir", t.TempDir()), shared.Node(), dir)
	case "redis":
		rs = redistest.Start(t)
		a = startTenantNode(t, testConfig(t, "--redis-url", rs.URL()), nil, dir)
		b = startTenantNode(t, testConfig(t, "--redis-url", rs.URL()), nil, dir)
	}
	acmeS := dialToken(t, b.node, acme.token(t, "andy"), acme.origin)
	globexS := dialToken(t, b.node, globex.token(t, "andy"), globex.origin)
	acmeS.hello()
	globexS.hello()

	// A tenant's first webhook on a node starts its map; wait until node a
	// holds both, so the frames below do not race the first load.
	for _, ft := range []*fakeTenant{acme, globex} {
		if st, body := postTo(t, a.base, "/webhook/"+ft.id, ft.crmToken, "c-"+ft.id, "cmd", "contact", "phone", "79101234567", "callid", "n0"); st != http.StatusOK {
			t.Fatalf("%s contact: %d %s", ft.id, st, body)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for a.srv.tenants.names.loaded(acme.id) == 0 || a.srv.tenants.names.loaded(globex.id) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("names not loaded: acme %d, globex %d (accounts asked %d, %d)",
				a.srv.tenants.names.loaded(acme.id), a.srv.tenants.names.loaded(globex.id), acme.accounts.Load(), globex.accounts.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}

	for _, c := range []struct {
		ft *fakeTenant
		s  *client
	}{{acme, acmeS}, {globex, globexS}} {
		if st, body := postTo(t, a.base, "/webhook/"+c.ft.id, c.ft.crmToken, "i-"+c.ft.id,
			"cmd", "event", "type", "INCOMING", "user", "andy", "callid", "n1", "phone", "79101234567"); st != http.StatusOK {
			t.Fatalf("%s INCOMING: %d %s", c.ft.id, st, body)
		}
		f := c.s.expectCall("INCOMING", "n1")
		contact, _ := f["contact"].(map[string]any)
		if want := "Andy of " + c.ft.id; contact["responsible"] != "andy" || contact["responsible_name"] != want {
			t.Fatalf("%s: contact %v, want responsible andy named %q", c.ft.id, contact, want)
		}
	}

	if rs != nil {
		ctx := context.Background()
		for _, ft := range []*fakeTenant{acme, globex} {
			if rs.Client().Exists(ctx, names.Key+":"+ft.id).Val() != 1 {
				t.Errorf("%s's names not shared under %s:%s", ft.id, names.Key, ft.id)
			}
		}
		if rs.Client().Exists(ctx, names.Key).Val() != 0 {
			t.Error("a tenant's names stored under the default tenant's key")
		}
	}

	// Stopped with the node: no map left running.
	a.srv.tenants.close()
	if a.srv.tenants.names.loaded(acme.id) != 0 {
		t.Error("acme's names still running after close")
	}
}
