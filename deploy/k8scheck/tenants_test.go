package k8scheck

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeTenantsFile overlays compose.yaml with the multi-tenant setup.
const composeTenantsFile = "../compose/compose.tenants.yaml"

// TestComposeTenantsOverlay: with compose.tenants.yaml every node serves the
// tenant registry in a persistent Redis and the admin API on its own
// loopback, with the admin token from Compose's environment, and nothing new
// is published.
func TestComposeTenantsOverlay(t *testing.T) {
	t.Parallel()
	const token = "ci-admin-token-0123456789"
	p := loadComposeWith(t, []string{"CALLPOP_ADMIN_TOKEN=" + token}, composeTenantsFile)
	contract, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range composeNodes {
		s := p.Services[name]
		for k := range s.Environment {
			if strings.HasPrefix(k, "CALLPOP_") && !strings.Contains(string(contract), "`"+k+"`") {
				t.Errorf("%s: %s is not a setting in docs/contract.md", name, k)
			}
		}
		if got := deref(s.Environment["CALLPOP_TENANTS_REDIS"]); got != "true" {
			t.Errorf("%s: CALLPOP_TENANTS_REDIS %q, want true", name, got)
		}
		if got := deref(s.Environment["CALLPOP_REDIS_URL"]); got == "" {
			t.Errorf("%s: the registry in Redis needs CALLPOP_REDIS_URL", name)
		}
		addr := deref(s.Environment["CALLPOP_ADMIN_ADDR"])
		if host, _, err := net.SplitHostPort(addr); err != nil || !net.ParseIP(host).IsLoopback() {
			t.Errorf("%s: CALLPOP_ADMIN_ADDR %q, want the container's loopback (it serves the profiler too)", name, addr)
		}
		if got := deref(s.Environment["CALLPOP_ADMIN_TOKEN"]); got != token {
			t.Errorf("%s: CALLPOP_ADMIN_TOKEN is not the one from Compose's environment", name)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s: published %v; only nginx is", name, s.Ports)
		}
	}
	redis := p.Services["redis"]
	if !strings.Contains(strings.Join(redis.Command, " "), "--appendonly yes") ||
		!slices.ContainsFunc(redis.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data" && v.Source != "" }) {
		t.Errorf("redis: the registry is state to keep: want --appendonly yes on a named volume at /data (command %q)", redis.Command)
	}
	// The example env file (shared with compose.yaml alone) must not carry
	// the admin token: without the overlay callpop would refuse it.
	example, err := os.ReadFile("../compose/callpop.env.example")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(example), "CALLPOP_ADMIN_TOKEN=") {
		t.Error("callpop.env.example sets CALLPOP_ADMIN_TOKEN: compose.yaml's nodes would refuse to start")
	}
}

// TestComposeTenantsOverlayNeedsTheAdminToken: without CALLPOP_ADMIN_TOKEN
// Compose refuses the overlay, saying what to set.
func TestComposeTenantsOverlayNeedsTheAdminToken(t *testing.T) {
	t.Parallel()
	opts, err := cli.NewProjectOptions([]string{composeFile, composeTenantsFile},
		cli.WithWorkingDirectory(filepath.Dir(composeFile)), cli.WithEnv([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = opts.LoadProject(context.Background())
	if err == nil || !strings.Contains(err.Error(), "CALLPOP_ADMIN_TOKEN") {
		t.Fatalf("loaded without CALLPOP_ADMIN_TOKEN: %v", err)
	}
}

// TestComposeOverlaysCombine: Sentinel and tenants together, in either
// order, give the same Redis and nodes with both settings.
func TestComposeOverlaysCombine(t *testing.T) {
	t.Parallel()
	env := []string{"CALLPOP_ADMIN_TOKEN=ci-admin-token-0123456789"}
	a := loadComposeWith(t, env, composeSentinelFile, composeTenantsFile)
	b := loadComposeWith(t, env, composeTenantsFile, composeSentinelFile)
	if !slices.Equal(a.Services["redis"].Command, b.Services["redis"].Command) {
		t.Errorf("redis command depends on the overlays' order: %q vs %q", a.Services["redis"].Command, b.Services["redis"].Command)
	}
	for _, p := range []map[string]string{
		{"CALLPOP_TENANTS_REDIS": deref(a.Services["callpop2"].Environment["CALLPOP_TENANTS_REDIS"]), "url": deref(a.Services["callpop2"].Environment["CALLPOP_REDIS_URL"])},
		{"CALLPOP_TENANTS_REDIS": deref(b.Services["callpop2"].Environment["CALLPOP_TENANTS_REDIS"]), "url": deref(b.Services["callpop2"].Environment["CALLPOP_REDIS_URL"])},
	} {
		if p["CALLPOP_TENANTS_REDIS"] != "true" || !strings.HasPrefix(p["url"], "redis-sentinel://") {
			t.Errorf("combined overlays: %v, want tenants in Redis through the Sentinels", p)
		}
	}
}
