package k8scheck

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// composeFile is the Compose cluster, relative to this package.
const composeFile = "../compose/compose.yaml"

// The callpop nodes of the Compose cluster.
var composeNodes = []string{"callpop1", "callpop2", "callpop3"}

// loadCompose loads compose.yaml as `docker compose --profile demo config`
// would (compose-go is Docker Compose's own loader): the Compose schema,
// interpolation, env files, and consistency (every depends_on names a
// service). No process environment leaks in.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithEnv([]string{}),
		cli.WithProfiles([]string{"demo"}),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

func TestComposeClusterIsWired(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for _, name := range append([]string{"redis", "nginx", "demo"}, composeNodes...) {
		if _, ok := p.Services[name]; !ok {
			t.Fatalf("no service %s", name)
		}
	}
	if !slices.Equal(p.Services["demo"].Profiles, []string{"demo"}) {
		t.Errorf("demo profiles %v, want [demo] only", p.Services["demo"].Profiles)
	}

	for _, name := range composeNodes {
		s := p.Services[name]
		env := func(k string) string {
			if v := s.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		// Only nginx is a trusted proxy: a private range would make every
		// LAN client one, with a forgeable X-Forwarded-For.
		if got, want := env("CALLPOP_TRUSTED_PROXIES"), nginxAddress(t, p); got != want {
			t.Errorf("%s: CALLPOP_TRUSTED_PROXIES %q, want nginx's address %q alone", name, got, want)
		}
		if got := env("CALLPOP_REDIS_URL"); got != "redis://redis:6379/0" {
			t.Errorf("%s: CALLPOP_REDIS_URL %q", name, got)
		}
		if len(env("CALLPOP_CRM_TOKEN")) < 16 || len(env("CALLPOP_JWT_SECRET")) < 32 {
			t.Errorf("%s: the env file must give a CALLPOP_CRM_TOKEN of ≥ 16 characters and a CALLPOP_JWT_SECRET of ≥ 32 bytes", name)
		}
		if d, ok := s.DependsOn["redis"]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: want depends_on redis service_healthy", name)
		}
		checkBuild(t, name, s)
		if s.StopGracePeriod == nil || time.Duration(*s.StopGracePeriod) <= 20*time.Second {
			t.Errorf("%s: stop_grace_period %v, want above callpop's 20 s drain", name, s.StopGracePeriod)
		}
	}
	checkBuild(t, "demo", p.Services["demo"])

	nginx := p.Services["nginx"]
	for _, n := range composeNodes {
		if d, ok := nginx.DependsOn[n]; !ok || d.Condition != types.ServiceConditionHealthy {
			t.Errorf("nginx: want depends_on %s service_healthy (it resolves the names at start)", n)
		}
	}
	for _, v := range nginx.Volumes {
		if _, err := os.Stat(v.Source); err != nil {
			t.Errorf("nginx volume %s: %v", v.Source, err)
		}
	}
	for target, why := range map[string]string{
		"/etc/nginx/callpop":    "deploy/nginx there: callpop.conf's includes are relative to /etc/nginx",
		"/etc/nginx/nginx.conf": "deploy/nginx/nginx.conf there: the image's default allows too few sockets",
	} {
		if !slices.ContainsFunc(nginx.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == target }) {
			t.Errorf("nginx: no mount at %s (%s)", target, why)
		}
	}
	if !slices.ContainsFunc(nginx.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == 80 }) {
		t.Error("nginx: want container port 80 published (deploy/nginx/listen.conf)")
	}

	// Every key of the env file is a callpop setting.
	contract, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../compose/callpop.env.example")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)=`).FindAllSubmatch(example, -1) {
		if !strings.Contains(string(contract), "`"+string(m[1])+"`") {
			t.Errorf("callpop.env.example: %s is not a setting in docs/contract.md", m[1])
		}
	}
}

// nginxAddress is nginx's fixed address on the compose network.
func nginxAddress(t *testing.T, p *types.Project) string {
	t.Helper()
	for _, n := range p.Services["nginx"].Networks {
		if n != nil && n.Ipv4Address != "" {
			return n.Ipv4Address
		}
	}
	t.Fatal("nginx has no fixed ipv4_address: the nodes cannot trust it alone")
	return ""
}

func checkBuild(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	if s.Build == nil {
		t.Errorf("%s: no build", name)
		return
	}
	df := s.Build.Dockerfile
	if !filepath.IsAbs(df) {
		df = filepath.Join(s.Build.Context, df)
	}
	if _, err := os.Stat(filepath.Join(s.Build.Context, "go.mod")); err != nil {
		t.Errorf("%s: build context %s is not the repository root: %v", name, s.Build.Context, err)
	}
	if _, err := os.Stat(df); err != nil {
		t.Errorf("%s: dockerfile: %v", name, err)
	}
}

// TestNginxUpstreamNamesTheComposeNodes: deploy/nginx/upstream.conf, as
// mounted in the Compose cluster, lists exactly its callpop nodes on the port
// they listen on.
func TestNginxUpstreamNamesTheComposeNodes(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	b, err := os.ReadFile("../nginx/upstream.conf")
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, m := range regexp.MustCompile(`(?m)^\s*server\s+([^\s:;]+):(\d+)`).FindAllSubmatch(b, -1) {
		hosts = append(hosts, string(m[1]))
		s, ok := p.Services[string(m[1])]
		if !ok {
			t.Errorf("upstream.conf: %s is no compose service", m[1])
			continue
		}
		if addr := s.Environment["CALLPOP_ADDR"]; addr == nil || !strings.HasSuffix(*addr, ":"+string(m[2])) {
			t.Errorf("upstream.conf: %s:%s, but the node listens on %q", m[1], m[2], orDefault(deref(addr), "?"))
		}
	}
	if !slices.Equal(hosts, composeNodes) {
		t.Errorf("upstream.conf servers %v, want %v", hosts, composeNodes)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
