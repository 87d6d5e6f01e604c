package k8scheck

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"

	credis "github.com/callpop/callpop/broker/redis"
)

// chartDir is the Helm chart, relative to this package; its ci/ folder holds
// one values file per way of running callpop (chart-testing's convention).
const chartDir = "../helm/callpop"

// renderChart renders the chart offline, as `helm template` does, with the
// values file (relative to the chart; "" for the defaults) and extra values
// over it, and decodes every document strictly.
func renderChart(t *testing.T, valuesFile string, extra map[string]any) (*objects, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	if valuesFile != "" {
		v, err := common.ReadValuesFile(filepath.Join(chartDir, valuesFile))
		if err != nil {
			t.Fatal(err)
		}
		vals = v
	}
	for k, v := range extra {
		vals[k] = v
	}
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{Name: "callpop", Namespace: "callpop", IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(ch, top)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(out))
	for name := range out {
		names = append(names, name)
	}
	sort.Strings(names)
	o := &objects{}
	for _, name := range names {
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		for _, doc := range splitDocs([]byte(out[name])) {
			if _, err := decodeStrict(doc, o); err != nil {
				t.Errorf("%s: %v\n%s", name, err, doc)
			}
		}
	}
	return o, nil
}

// TestHelmChartRendersForEveryValuesFile renders the chart for each values
// file in ci/ and checks what a cluster would run: probes on /healthz and
// /readyz, a PodDisruptionBudget, resources, GOMEMLIMIT under the memory
// limit, secrets only from Secrets, the Ingress on the public paths only,
// and CALLPOP_REDIS_URL as the values say.
func TestHelmChartRendersForEveryValuesFile(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	if err != nil || len(files) < 5 {
		t.Fatalf("values files in ci/: %v, %v; want single, redis, sentinel, cluster, tenants", files, err)
	}
	for _, f := range files {
		rel, _ := filepath.Rel(chartDir, f)
		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			vals, err := common.ReadValuesFile(f)
			if err != nil {
				t.Fatal(err)
			}
			o, err := renderChart(t, rel, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkChart(t, o, vals)
		})
	}
}

func checkChart(t *testing.T, o *objects, vals common.Values) {
	t.Helper()
	if len(o.deployments) != 1 {
		t.Fatalf("%d deployments, want 1", len(o.deployments))
	}
	d := o.deployments[0]
	c := container(t, d, "callpop")
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", c)
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz", c)
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("resources: want CPU and memory requests")
	}
	checkGoMemLimit(t, c)
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("container securityContext: want readOnlyRootFilesystem")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		t.Error("no preStop pause")
	}

	// A PDB over exactly these pods.
	if len(o.pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(o.pdbs))
	}
	sel, err := metav1.LabelSelectorAsSelector(o.pdbs[0].Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("pdb selector %v does not select the pods (%v)", o.pdbs[0].Spec.Selector, err)
	}
	for _, s := range o.services {
		if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("service %s does not select the pods", s.Name)
		}
	}

	// Settings: secrets never in the ConfigMap nor in plain env; every
	// envFrom names an object of the chart or the existing Secret.
	var secretRefs []string
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil:
			for k := range configMap(t, o, e.ConfigMapRef.Name).Data {
				if slices.Contains(secretSettings, k) || k == "CALLPOP_REDIS_URL" {
					t.Errorf("configmap: %s belongs in a Secret", k)
				}
			}
		case e.SecretRef != nil:
			secretRefs = append(secretRefs, e.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		if slices.Contains(secretSettings, e.Name) || e.Name == "CALLPOP_REDIS_URL" {
			t.Errorf("env: %s in plain text; it belongs in a Secret", e.Name)
		}
	}
	existing, _ := vals.PathValue("secrets.existingSecret")
	secretData := map[string]string{}
	for _, name := range secretRefs {
		if name == existing {
			continue // the operator's own Secret
		}
		for k, v := range secret(t, o, name).StringData {
			secretData[k] = v
		}
	}
	if existing == nil || existing == "" {
		for _, k := range []string{"CALLPOP_CRM_TOKEN", "CALLPOP_JWT_SECRET"} {
			if secretData[k] == "" {
				t.Errorf("no %s in the chart's Secret", k)
			}
		}
	} else if !slices.Contains(secretRefs, existing.(string)) {
		t.Errorf("secrets.existingSecret %q is not in envFrom %v", existing, secretRefs)
	}
	wantRedis, _ := vals.PathValue("redis.url")
	if got := secretData["CALLPOP_REDIS_URL"]; got != orDefault(toString(wantRedis), "") {
		t.Errorf("CALLPOP_REDIS_URL %q, want %q (values redis.url)", got, wantRedis)
	}
	replicas := int(ptrOr(d.Spec.Replicas, 1))
	if wantRedis == nil || wantRedis == "" {
		if replicas != 1 {
			t.Errorf("%d replicas on the embedded broker, want 1", replicas)
		}
	} else if opt, err := credis.ParseClientURL(toString(wantRedis)); err != nil {
		t.Errorf("redis.url: callpop refuses it: %v", err)
	} else if scheme, _, _ := strings.Cut(toString(wantRedis), "://"); strings.Contains(scheme, "sentinel") && (opt.MasterName == "" || len(opt.Addrs) < 2) {
		t.Errorf("redis.url: a Sentinel URL with master set %q and sentinels %v; want a master set and more than one Sentinel", opt.MasterName, opt.Addrs)
	} else if strings.Contains(scheme, "cluster") && !opt.IsClusterMode {
		t.Errorf("redis.url: %s:// but not cluster mode", scheme)
	}
	if len(o.ingresses) > 0 {
		checkPublicRoutes(t, o.ingresses)
	}
	checkChartTenants(t, o, c, vals, secretData)
	if enabled, _ := vals.PathValue("metrics.serviceMonitor.enabled"); enabled == true {
		if len(o.serviceMonitors) != 1 {
			t.Fatalf("%d ServiceMonitors with metrics.serviceMonitor.enabled, want 1", len(o.serviceMonitors))
		}
		sm := o.serviceMonitors[0]
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() || !slices.ContainsFunc(o.services, func(s *corev1.Service) bool { return sel.Matches(labels.Set(s.Labels)) }) {
			t.Errorf("ServiceMonitor selects no Service of the chart (%v)", err)
		}
		if len(sm.Spec.Endpoints) != 1 || sm.Spec.Endpoints[0].Path != "/metrics" ||
			!slices.ContainsFunc(o.services, func(s *corev1.Service) bool {
				return slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == sm.Spec.Endpoints[0].Port })
			}) {
			t.Errorf("ServiceMonitor endpoints %+v, want /metrics on a Service port", sm.Spec.Endpoints)
		}
	} else if len(o.serviceMonitors) != 0 {
		t.Error("a ServiceMonitor without metrics.serviceMonitor.enabled")
	}
}

// checkChartTenants: with tenants.redis the nodes serve the registry in
// Redis; with admin.enabled the admin listener is on the pod's loopback,
// behind no Service or container port; the admin token only in a Secret.
func checkChartTenants(t *testing.T, o *objects, c *corev1.Container, vals common.Values, secretData map[string]string) {
	t.Helper()
	settings := map[string]string{}
	for _, e := range c.EnvFrom {
		if e.ConfigMapRef != nil {
			for k, v := range configMap(t, o, e.ConfigMapRef.Name).Data {
				settings[k] = v
			}
		}
	}
	for _, k := range []string{"CALLPOP_ADMIN_TOKEN", "CALLPOP_ADMIN_TOKEN_FILE"} {
		if _, ok := settings[k]; ok {
			t.Errorf("configmap: %s belongs in a Secret", k)
		}
		if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == k }) {
			t.Errorf("env: %s in plain text; it belongs in a Secret", k)
		}
	}
	if tr, _ := vals.PathValue("tenants.redis"); tr == true {
		if settings["CALLPOP_TENANTS_REDIS"] != "true" {
			t.Errorf("tenants.redis: CALLPOP_TENANTS_REDIS %q, want true", settings["CALLPOP_TENANTS_REDIS"])
		}
	} else if _, ok := settings["CALLPOP_TENANTS_REDIS"]; ok {
		t.Error("CALLPOP_TENANTS_REDIS without tenants.redis")
	}
	addr, on := settings["CALLPOP_ADMIN_ADDR"]
	if enabled, _ := vals.PathValue("admin.enabled"); enabled != true {
		if on {
			t.Errorf("CALLPOP_ADMIN_ADDR %q without admin.enabled", addr)
		}
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("CALLPOP_ADMIN_ADDR %q: want the pod's loopback (port-forward only): %v", addr, err)
	}
	for _, p := range c.Ports {
		if strconv.Itoa(int(p.ContainerPort)) == port {
			t.Errorf("container port %d is the admin listener's: no Service may name it", p.ContainerPort)
		}
	}
	for _, svc := range o.services {
		for _, p := range svc.Spec.Ports {
			if p.TargetPort.String() == port || p.TargetPort.String() != "http" {
				t.Errorf("service %s: port %v reaches past the public listener", svc.Name, p.TargetPort.String())
			}
		}
	}
	if tok, _ := vals.PathValue("secrets.adminToken"); tok != nil && tok != "" {
		if len(secretData["CALLPOP_ADMIN_TOKEN"]) < 16 {
			t.Error("secrets.adminToken: no CALLPOP_ADMIN_TOKEN of ≥ 16 characters in the chart's Secret")
		}
	}
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

// TestHelmChartRefusesWhatCannotWork: the chart stops at render time, with
// its reason, rather than deploy a cluster that cannot work.
func TestHelmChartRefusesWhatCannotWork(t *testing.T) {
	t.Parallel()
	secrets := map[string]any{"crmToken": "ci-crm-token-0123456789", "jwtSecret": strings.Repeat("j", 32)}
	withAdmin := map[string]any{"crmToken": "ci-crm-token-0123456789", "jwtSecret": strings.Repeat("j", 32), "adminToken": strings.Repeat("a", 16)}
	redisURL := map[string]any{"url": "redis://redis:6379/0"}
	for name, c := range map[string]struct {
		extra map[string]any
		want  string
	}{
		"several nodes on the embedded broker": {map[string]any{"replicaCount": 3, "secrets": secrets}, "needs redis.url"},
		"no secrets":                           {map[string]any{}, "secrets.crmToken"},
		"a secret in config":                   {map[string]any{"secrets": secrets, "config": map[string]any{"CALLPOP_JWT_SECRET": "x"}}, "not config"},
		"the admin token in config":            {map[string]any{"secrets": secrets, "config": map[string]any{"CALLPOP_ADMIN_TOKEN": strings.Repeat("a", 16)}}, "not config"},
		"tenants in Redis without Redis":       {map[string]any{"secrets": secrets, "tenants": map[string]any{"redis": true}}, "tenants.redis needs redis.url"},
		"an admin token without the listener":  {map[string]any{"secrets": withAdmin, "redis": redisURL, "tenants": map[string]any{"redis": true}}, "needs admin.enabled"},
		"an admin token without tenants": {map[string]any{"secrets": withAdmin, "redis": redisURL,
			"admin": map[string]any{"enabled": true, "port": 9090}}, "needs tenants.redis"},
		"a memory limit GOMEMLIMIT cannot follow": {map[string]any{"secrets": secrets,
			"resources": map[string]any{"limits": map[string]any{"memory": "500M"}}}, "set goMemLimit"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := renderChart(t, "", c.extra)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("rendered with %v: err %v, want one saying %q", c.extra, err, c.want)
			}
		})
	}
	// The defaults with secrets given: one node, 90 % of 512Mi.
	o, err := renderChart(t, "", map[string]any{"secrets": secrets})
	if err != nil {
		t.Fatal(err)
	}
	c := container(t, o.deployments[0], "callpop")
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" }); i < 0 || c.Env[i].Value != "460MiB" {
		t.Errorf("GOMEMLIMIT for a 512Mi limit: %v, want 460MiB", c.Env)
	}
}

// TestChartIngressMatchesThePlainManifests: the chart's Ingress routes the
// same paths as deploy/k8s/ingress.yaml.
func TestChartIngressMatchesThePlainManifests(t *testing.T) {
	t.Parallel()
	o, err := renderChart(t, "ci/redis-values.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	paths := func(o *objects) []string {
		var ps []string
		for _, ing := range o.ingresses {
			for _, r := range ing.Spec.Rules {
				for _, p := range r.HTTP.Paths {
					ps = append(ps, p.Path+" "+string(*p.PathType))
				}
			}
		}
		sort.Strings(ps)
		return ps
	}
	if got, want := paths(o), paths(load(t)); !slices.Equal(got, want) {
		t.Errorf("chart ingress paths %v, plain manifests %v", got, want)
	}
	if _, err := os.Stat(filepath.Join(chartDir, "values.yaml")); err != nil {
		t.Fatal(err)
	}
}
