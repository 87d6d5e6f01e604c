package k8scheck

import (
	"context"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	credis "github.com/callpop/callpop/broker/redis"
)

// composeSentinelFile overlays compose.yaml with Redis Sentinel.
const composeSentinelFile = "../compose/compose.sentinel.yaml"

// loadComposeWith loads compose.yaml with overlay files over it, as
// `docker compose -f compose.yaml -f <overlay>… config` would, with env as
// the only environment.
func loadComposeWith(t *testing.T, env []string, overlays ...string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions(append([]string{composeFile}, overlays...),
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithEnv(env),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s with %v: %v", composeFile, overlays, err)
	}
	return p
}

// sentinelURL is what callpop reads from a redis-sentinel:// URL, parsed by
// callpop's own parser: the Sentinels' host:port list and the master set.
func sentinelURL(t *testing.T, raw string) (addrs []string, master string) {
	t.Helper()
	opt, err := credis.ParseClientURL(raw)
	if err != nil {
		t.Fatalf("callpop refuses the Redis URL: %v", err)
	}
	if opt.MasterName == "" {
		t.Fatal("not a redis-sentinel:// URL: no master set")
	}
	return opt.Addrs, opt.MasterName
}

// TestComposeSentinelOverlay: with compose.sentinel.yaml the nodes reach
// Redis through three healthy Sentinels that monitor the master set their
// URL names, on compose.yaml's master, with a replica of it.
func TestComposeSentinelOverlay(t *testing.T) {
	t.Parallel()
	p := loadComposeWith(t, nil, composeSentinelFile)
	sentinels := []string{"sentinel1", "sentinel2", "sentinel3"}
	var master string
	for _, name := range sentinels {
		s, ok := p.Services[name]
		if !ok {
			t.Fatalf("no service %s", name)
		}
		cmd := strings.Join(s.Command, " ")
		m := regexp.MustCompile(`'sentinel monitor (\S+) (\S+) 6379 2'`).FindStringSubmatch(cmd)
		if m == nil || m[2] != "redis" {
			t.Fatalf("%s: want 'sentinel monitor <set> redis 6379 2' (quorum 2 of 3) in %q", name, cmd)
		}
		if master != "" && m[1] != master {
			t.Errorf("%s monitors %q, another %q", name, m[1], master)
		}
		master = m[1]
		// Names only mean something to Sentinel with these, and they must
		// come before the monitor line.
		for _, want := range []string{"'sentinel resolve-hostnames yes'", "'sentinel announce-hostnames yes'", `"sentinel announce-ip $SENTINEL_NAME"`} {
			if i := strings.Index(cmd, want); i < 0 || i > strings.Index(cmd, "'sentinel monitor") {
				t.Errorf("%s: want %s before the monitor line", name, want)
			}
		}
		if got := deref(s.Environment["SENTINEL_NAME"]); got != name {
			t.Errorf("%s: SENTINEL_NAME %q, want its service name", name, got)
		}
		if s.HealthCheck == nil || !slices.Contains(s.HealthCheck.Test, "26379") {
			t.Errorf("%s: want a healthcheck on port 26379", name)
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s: published %v; nothing but nginx is", name, s.Ports)
		}
	}
	replica := p.Services["redis-replica"]
	if !strings.Contains(strings.Join(replica.Command, " "), "--replicaof redis 6379") {
		t.Errorf("redis-replica: command %q does not replicate redis", replica.Command)
	}
	for _, name := range []string{"redis", "redis-replica"} {
		s := p.Services[name]
		if !strings.Contains(strings.Join(s.Command, " "), "--replica-announce-ip "+name) {
			t.Errorf("%s: want --replica-announce-ip %s (Sentinel finds it by name after a restart)", name, name)
		}
		// A master Docker restarts empty before the Sentinels notice would
		// empty its replica too.
		if !strings.Contains(strings.Join(s.Command, " "), "--appendonly yes") ||
			!slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == "/data" && v.Source != "" }) {
			t.Errorf("%s: want --appendonly yes on a named volume at /data", name)
		}
	}

	for _, name := range composeNodes {
		s := p.Services[name]
		addrs, set := sentinelURL(t, deref(s.Environment["CALLPOP_REDIS_URL"]))
		if set != master {
			t.Errorf("%s: CALLPOP_REDIS_URL names master set %q, the Sentinels monitor %q", name, set, master)
		}
		var want []string
		for _, sn := range sentinels {
			want = append(want, sn+":26379")
			if d, ok := s.DependsOn[sn]; !ok || d.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s: want depends_on %s service_healthy", name, sn)
			}
		}
		if !slices.Equal(addrs, want) {
			t.Errorf("%s: sentinels %v, want %v", name, addrs, want)
		}
		// The rest of the node is compose.yaml's.
		if deref(s.Environment["CALLPOP_TRUSTED_PROXIES"]) == "" || s.StopGracePeriod == nil {
			t.Errorf("%s: lost compose.yaml's settings in the overlay", name)
		}
	}
}
