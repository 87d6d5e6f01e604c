// Package k8scheck checks the deployment files offline, with no cluster and
// no Docker engine:
//
//   - deploy/k8s: every manifest decodes strictly into the k8s.io/api type of
//     its kind (an unknown, misspelt, miscased or mistyped field or a
//     duplicated key fails, as the API server's strict field validation
//     would), and the objects agree with each other and with callpop (probe
//     paths, replicas, grace period, selectors, ports, settings);
//   - deploy/helm/callpop: the chart rendered offline with Helm's own engine
//     for each values file in its ci/ folder, decoded and checked the same way;
//   - deploy/compose/compose.yaml: loads with Docker Compose's own loader
//     (compose-go: the Compose schema, env files, depends_on), and agrees with
//     deploy/nginx/upstream.conf; so do its overlays (compose.*.yaml) over it.
//
// Redis URLs are parsed by callpop's own parser (the module replaces
// github.com/callpop/callpop with the repository root).
//
// It is its own module so the main module does not carry k8s.io/api, Helm and
// compose-go. Run it with `cd deploy/k8scheck && go test ./...`.
package k8scheck

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// manifestDir holds the manifests, relative to this package.
const manifestDir = "../k8s"

// The settings that are secrets: in the Secret, never in the ConfigMap.
var secretSettings = []string{"CALLPOP_CRM_TOKEN", "CALLPOP_JWT_SECRET", "CALLPOP_PBX_TOKEN"}

// kustomization is the part of kustomize's Kustomization the manifests use;
// decoded strictly too, so a field outside it needs adding here first.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Resources  []string `json:"resources"`
	Images     []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
		Digest  string `json:"digest"`
	} `json:"images"`
}

// objects is every manifest of deploy/k8s, by kind.
type objects struct {
	namespaces  []*corev1.Namespace
	configMaps  []*corev1.ConfigMap
	secrets     []*corev1.Secret
	services    []*corev1.Service
	deployments []*appsv1.Deployment
	pdbs        []*policyv1.PodDisruptionBudget
	ingresses   []*networkingv1.Ingress
	pvcs        []*corev1.PersistentVolumeClaim
	// serviceMonitors are the prometheus-operator's (a CRD, so not in
	// k8s.io/api): the fields the Helm chart sets, decoded strictly too.
	serviceMonitors []*serviceMonitor
	kust            kustomization
}

// serviceMonitor is the part of monitoring.coreos.com/v1 ServiceMonitor the
// Helm chart uses.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// decodeStrict decodes one YAML document into the typed object for its
// apiVersion and kind.
func decodeStrict(doc []byte, o *objects) (string, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return "", err
	}
	gvk := tm.APIVersion + "/" + tm.Kind
	var err error
	switch gvk {
	case "v1/Namespace":
		err = decodeInto(doc, &o.namespaces)
	case "v1/ConfigMap":
		err = decodeInto(doc, &o.configMaps)
	case "v1/Secret":
		err = decodeInto(doc, &o.secrets)
	case "v1/Service":
		err = decodeInto(doc, &o.services)
	case "apps/v1/Deployment":
		err = decodeInto(doc, &o.deployments)
	case "policy/v1/PodDisruptionBudget":
		err = decodeInto(doc, &o.pdbs)
	case "networking.k8s.io/v1/Ingress":
		err = decodeInto(doc, &o.ingresses)
	case "v1/PersistentVolumeClaim":
		err = decodeInto(doc, &o.pvcs)
	case "monitoring.coreos.com/v1/ServiceMonitor":
		err = decodeInto(doc, &o.serviceMonitors)
	default:
		return gvk, fmt.Errorf("kind %q is not one this check knows (add it to decodeStrict)", gvk)
	}
	return gvk, err
}

func decodeInto[T any](doc []byte, list *[]*T) error {
	v := new(T)
	if err := unmarshalStrict(doc, v); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

// unmarshalStrict decodes YAML the way the API server's strict field
// validation does: duplicate keys fail (YAMLToJSONStrict), and field names
// match case-sensitively with unknown ones failing (sigs.k8s.io/json).
// yaml.UnmarshalStrict alone is not enough: encoding/json matches field names
// case-insensitively, so `targetport:` would pass as `targetPort:`.
func unmarshalStrict(doc []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return err
	}
	strict, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// splitDocs splits a multi-document YAML file, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---[ \t]*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	return regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(s, "")
}

// load reads kustomization.yaml and every resource it lists.
func load(t *testing.T) *objects {
	t.Helper()
	o := &objects{}
	b, err := os.ReadFile(filepath.Join(manifestDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshalStrict(b, &o.kust); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	for _, r := range o.kust.Resources {
		b, err := os.ReadFile(filepath.Join(manifestDir, r))
		if err != nil {
			t.Fatalf("kustomization.yaml lists %s: %v", r, err)
		}
		docs := splitDocs(b)
		if len(docs) == 0 {
			t.Errorf("%s: no documents", r)
		}
		for i, doc := range docs {
			if gvk, err := decodeStrict(doc, o); err != nil {
				t.Errorf("%s, document %d (%s): %v", r, i+1, gvk, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return o
}

func TestEveryManifestDecodesStrictly(t *testing.T) {
	t.Parallel()
	o := load(t)
	k := o.kust
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s/%s", k.APIVersion, k.Kind)
	}
	// Every manifest in the directory is a resource of the kustomization,
	// and each only once.
	files, _ := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	for _, f := range files {
		name := filepath.Base(f)
		if name != "kustomization.yaml" && !slices.Contains(k.Resources, name) {
			t.Errorf("%s is not listed in kustomization.yaml", name)
		}
	}
	if c := slices.Compact(slices.Sorted(slices.Values(k.Resources))); len(c) != len(k.Resources) {
		t.Errorf("kustomization.yaml lists a resource twice: %v", k.Resources)
	}
	if len(o.namespaces) != 1 || o.namespaces[0].Name != k.Namespace {
		t.Errorf("want one Namespace named %q (the kustomization's), have %d", k.Namespace, len(o.namespaces))
	}
	for _, d := range o.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			if !imageIsSet(c.Image, k) && !strings.Contains(c.Image, ":") {
				t.Errorf("deployment %s: image %q has neither a tag nor a kustomization images entry", d.Name, c.Image)
			}
		}
	}
}

func imageIsSet(image string, k kustomization) bool {
	for _, i := range k.Images {
		if i.Name == image && i.NewName != "" && (i.NewTag != "" || i.Digest != "") {
			return true
		}
	}
	return false
}

// TestStrictDecodingRejectsWrongFields shows the check has teeth: a misspelt
// field, a field of the wrong type and a duplicated key each fail.
func TestStrictDecodingRejectsWrongFields(t *testing.T) {
	t.Parallel()
	for name, doc := range map[string]string{
		"UnknownField": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replica: 3\n",
		"WrongType":    "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: three\n",
		"NestedTypo": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n" +
			"    - port: 80\n      targetport: http\n",
		"CaseTypo":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  Replicas: 3\n",
		"DuplicateKey": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {A: b, A: c}\n",
		"UnknownKind":  "apiVersion: v1\nkind: Servce\nmetadata: {name: x}\n",
		"BadQuantity": "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n---\napiVersion: apps/v1\nkind: Deployment\n" +
			"metadata: {name: x}\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n" +
			"          resources: {requests: {memory: lots}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var failed bool
			for _, d := range splitDocs([]byte(doc)) {
				if _, err := decodeStrict(d, &objects{}); err != nil {
					failed = true
				}
			}
			if !failed {
				t.Fatalf("accepted:\n%s", doc)
			}
		})
	}
}

func TestDeploymentMatchesCallpop(t *testing.T) {
	t.Parallel()
	o := load(t)
	d := deployment(t, o, "callpop")
	c := container(t, d, "callpop")
	cfg := configMap(t, o, "callpop-config")

	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %v, want 3", d.Spec.Replicas)
	}
	if len(c.Args) == 0 || c.Args[0] != "serve" {
		t.Errorf("args %v, want serve", c.Args)
	}
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", c)
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz", c)

	// The grace period covers the preStop pause and callpop's own drain.
	var preStop time.Duration
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil {
		t.Error("no preStop: the Service may still send connections to a draining pod")
	} else if s := c.Lifecycle.PreStop.Sleep; s != nil {
		preStop = time.Duration(s.Seconds) * time.Second
	} else if e := c.Lifecycle.PreStop.Exec; e != nil && len(e.Command) == 2 && e.Command[0] == "sleep" {
		n, _ := strconv.Atoi(e.Command[1])
		preStop = time.Duration(n) * time.Second
	}
	if preStop < 3*time.Second || preStop > 15*time.Second {
		t.Errorf("preStop pause %v, want a few seconds", preStop)
	}
	drain, err := time.ParseDuration(orDefault(cfg.Data["CALLPOP_SHUTDOWN_TIMEOUT"], "20s"))
	if err != nil {
		t.Errorf("CALLPOP_SHUTDOWN_TIMEOUT: %v", err)
	}
	grace := time.Duration(ptrOr(d.Spec.Template.Spec.TerminationGracePeriodSeconds, 30)) * time.Second
	if grace < 25*time.Second || grace < preStop+drain {
		t.Errorf("terminationGracePeriodSeconds %v, want ≥ 25 s and ≥ preStop %v + shutdown timeout %v", grace, preStop, drain)
	}

	// callpop listens where the container port says.
	_, port, err := net.SplitHostPort(orDefault(cfg.Data["CALLPOP_ADDR"], ":8080"))
	if err != nil || !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return strconv.Itoa(int(p.ContainerPort)) == port }) {
		t.Errorf("CALLPOP_ADDR %q does not match the container ports %v", cfg.Data["CALLPOP_ADDR"], c.Ports)
	}

	// Non-root, read-only, nothing extra.
	pod := d.Spec.Template.Spec.SecurityContext
	sc := c.SecurityContext
	switch {
	case pod == nil || pod.RunAsNonRoot == nil || !*pod.RunAsNonRoot:
		t.Error("pod securityContext: want runAsNonRoot")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container securityContext: want readOnlyRootFilesystem")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container securityContext: want allowPrivilegeEscalation false")
	case sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL"):
		t.Error("container securityContext: want capabilities drop ALL")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Error("resources: want CPU and memory requests")
	}
	checkGoMemLimit(t, c)

	// Settings come from objects that exist.
	for _, e := range c.EnvFrom {
		switch {
		case e.ConfigMapRef != nil:
			configMap(t, o, e.ConfigMapRef.Name)
		case e.SecretRef != nil:
			secret(t, o, e.SecretRef.Name)
		}
	}
}

// checkGoMemLimit: the container sets GOMEMLIMIT a little under its memory
// limit (docs/deploy.md), between 75 % and 95 % of it, so the GC tightens
// before the kernel kills the pod.
func checkGoMemLimit(t *testing.T, c *corev1.Container) {
	t.Helper()
	limit := c.Resources.Limits.Memory()
	if limit.IsZero() {
		t.Error("resources: want a memory limit")
		return
	}
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	if i < 0 {
		t.Error("env: no GOMEMLIMIT: the GC does not know the container's memory limit")
		return
	}
	n, err := parseGoMemLimit(c.Env[i].Value)
	if err != nil {
		t.Errorf("GOMEMLIMIT %q: %v", c.Env[i].Value, err)
		return
	}
	if l := limit.Value(); n >= l*95/100 || n < l*75/100 {
		t.Errorf("GOMEMLIMIT %q (%d bytes) with a memory limit of %s, want 75–95 %% of it", c.Env[i].Value, n, limit)
	}
}

// parseGoMemLimit reads GOMEMLIMIT as the Go runtime does: a byte count with
// an optional B, KiB, MiB, GiB or TiB suffix.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, errors.New("not a byte count with a B, KiB, MiB, GiB or TiB suffix")
	}
	return n * mult, nil
}

func checkProbe(t *testing.T, name string, p *corev1.Probe, path string, c *corev1.Container) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("%s probe: want GET %s", name, path)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s probe path %q, want %s", name, p.HTTPGet.Path, path)
	}
	if !hasPort(c, p.HTTPGet.Port.String()) {
		t.Errorf("%s probe port %s is not a container port", name, p.HTTPGet.Port.String())
	}
}

func hasPort(c *corev1.Container, port string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
		return p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port
	})
}

// TestSelectorsFindTheirPods: every Deployment's selector matches its own
// template, every Service and PodDisruptionBudget selects exactly one
// Deployment's pods, and the ingress and Service ports line up.
func TestSelectorsFindTheirPods(t *testing.T) {
	t.Parallel()
	o := load(t)
	for _, d := range o.deployments {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("deployment %s: selector %v does not match its pod labels %v (%v)", d.Name, d.Spec.Selector, d.Spec.Template.Labels, err)
		}
	}
	for _, s := range o.services {
		ds := selected(o, labels.SelectorFromSet(s.Spec.Selector))
		if len(ds) != 1 {
			t.Errorf("service %s selects the pods of %d deployments, want 1", s.Name, len(ds))
			continue
		}
		for _, p := range s.Spec.Ports {
			if !slices.ContainsFunc(ds[0].Spec.Template.Spec.Containers, func(c corev1.Container) bool { return hasPort(&c, p.TargetPort.String()) }) {
				t.Errorf("service %s: targetPort %s is no port of deployment %s", s.Name, p.TargetPort.String(), ds[0].Name)
			}
		}
	}
	if ds := selected(o, labels.SelectorFromSet(service(t, o, "callpop").Spec.Selector)); len(ds) != 1 || ds[0].Name != "callpop" {
		t.Errorf("service callpop does not select the callpop pods")
	}

	pdb := pdb(t, o, "callpop")
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if ds := selected(o, sel); len(ds) != 1 || ds[0].Name != "callpop" {
		t.Errorf("pdb callpop selects %d deployments, want exactly the callpop one", len(ds))
	}
	replicas := int(ptrOr(deployment(t, o, "callpop").Spec.Replicas, 1))
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || replicas <= pdb.Spec.MinAvailable.IntValue() {
		t.Errorf("pdb minAvailable %v with %d replicas, want 2 (and one pod free to go)", pdb.Spec.MinAvailable, replicas)
	}

	for _, ing := range o.ingresses {
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				b := p.Backend.Service
				if b == nil {
					t.Errorf("ingress %s: a path without a service backend", ing.Name)
					continue
				}
				s := service(t, o, b.Name)
				if !slices.ContainsFunc(s.Spec.Ports, func(sp corev1.ServicePort) bool {
					return sp.Name == b.Port.Name && b.Port.Name != "" || sp.Port == b.Port.Number && b.Port.Number != 0
				}) {
					t.Errorf("ingress %s: service %s has no port %v", ing.Name, b.Name, b.Port)
				}
			}
		}
	}
}

// TestIngressKeepsSocketsOpen: the ingress timeouts outlast callpop's 25 s
// ping with room to spare, and nothing is buffered.
func TestIngressKeepsSocketsOpen(t *testing.T) {
	t.Parallel()
	o := load(t)
	if len(o.ingresses) != 1 {
		t.Fatalf("%d ingresses, want 1", len(o.ingresses))
	}
	a := o.ingresses[0].Annotations
	for _, k := range []string{"proxy-read-timeout", "proxy-send-timeout"} {
		if n, err := strconv.Atoi(a["nginx.ingress.kubernetes.io/"+k]); err != nil || n < 75 {
			t.Errorf("%s %q, want ≥ 75 s (three 25 s pings)", k, a["nginx.ingress.kubernetes.io/"+k])
		}
	}
	if a["nginx.ingress.kubernetes.io/proxy-buffering"] != "off" {
		t.Error("proxy-buffering: want off")
	}
	if len(o.ingresses[0].Spec.TLS) == 0 {
		t.Error("no TLS: the PBX posts only to HTTPS")
	}
}

// TestIngressRoutesThePublicSurfaceOnly: the ingress carries what browsers
// and the PBX need and nothing an operator keeps inside (/metrics above all,
// which the nginx config limits to private networks too).
func TestIngressRoutesThePublicSurfaceOnly(t *testing.T) {
	t.Parallel()
	o := load(t)
	checkPublicRoutes(t, o.ingresses)
}

// checkPublicRoutes: ings route the PBX's and the widget's paths and none an
// operator keeps inside.
func checkPublicRoutes(t *testing.T, ings []*networkingv1.Ingress) {
	t.Helper()
	routed := func(path string) bool {
		for _, ing := range ings {
			for _, r := range ing.Spec.Rules {
				if r.HTTP == nil {
					continue
				}
				for _, p := range r.HTTP.Paths {
					switch {
					case p.PathType == nil:
					case *p.PathType == networkingv1.PathTypeExact && path == p.Path:
						return true
					case *p.PathType == networkingv1.PathTypePrefix &&
						(path == p.Path || strings.HasPrefix(path, strings.TrimSuffix(p.Path, "/")+"/")):
						return true
					}
				}
			}
		}
		return false
	}
	for _, p := range []string{"/", "/webhook", "/webhook/acme.megapbx.ru", "/ws", "/api/ws-ticket", "/api/calls", "/api/groups/sales", "/widget.js", "/widget-panel.js", "/widget.css"} {
		if !routed(p) {
			t.Errorf("%s is not routed: the PBX or the widget needs it", p)
		}
	}
	for _, p := range []string{"/metrics", "/readyz", "/healthz", "/debug/pprof/", "/demo", "/demo/token", "/apix", "/webhookx", "/admin/tenants"} {
		if routed(p) {
			t.Errorf("%s is routed to the public: keep it inside the cluster", p)
		}
	}
}

// TestSettingsAreCallpops: the ConfigMap and Secret hold only settings
// docs/contract.md names, secrets only in the Secret, and the Redis URL
// names a Service of the manifests (or a host outside them).
func TestSettingsAreCallpops(t *testing.T) {
	t.Parallel()
	o := load(t)
	contract, err := os.ReadFile("../../docs/contract.md")
	if err != nil {
		t.Fatal(err)
	}
	known := regexp.MustCompile(`CALLPOP_[A-Z_]+`).FindAll(contract, -1)
	isKnown := func(k string) bool {
		return slices.ContainsFunc(known, func(b []byte) bool { return bytes.Equal(b, []byte(k)) })
	}

	cfg := configMap(t, o, "callpop-config")
	for k := range cfg.Data {
		if !isKnown(k) {
			t.Errorf("configmap: %s is not a setting in docs/contract.md", k)
		}
		if slices.Contains(secretSettings, k) {
			t.Errorf("configmap: %s is a secret: it belongs in the Secret", k)
		}
	}
	sec := secret(t, o, "callpop-secrets")
	for _, k := range secretSettings {
		if _, ok := sec.StringData[k]; !ok {
			if _, ok := sec.Data[k]; !ok {
				t.Errorf("secret: no %s", k)
			}
		}
	}
	for k, v := range sec.StringData {
		if !isKnown(k) {
			t.Errorf("secret: %s is not a setting in docs/contract.md", k)
		}
		if k == "CALLPOP_JWT_SECRET" && len(v) < 32 {
			t.Errorf("secret: CALLPOP_JWT_SECRET placeholder is %d bytes; callpop refuses fewer than 32", len(v))
		}
	}

	u, err := url.Parse(cfg.Data["CALLPOP_REDIS_URL"])
	if err != nil || u.Scheme != "redis" && u.Scheme != "rediss" {
		t.Fatalf("CALLPOP_REDIS_URL %q: want redis://", cfg.Data["CALLPOP_REDIS_URL"])
	}
	if !strings.Contains(u.Hostname(), ".") { // an in-cluster short name
		s := service(t, o, u.Hostname())
		if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == orDefault(u.Port(), "6379") }) {
			t.Errorf("service %s has no port %s for CALLPOP_REDIS_URL", s.Name, orDefault(u.Port(), "6379"))
		}
	}
}

// selected returns the deployments whose pods sel matches.
func selected(o *objects, sel labels.Selector) []*appsv1.Deployment {
	var ds []*appsv1.Deployment
	for _, d := range o.deployments {
		if !sel.Empty() && sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			ds = append(ds, d)
		}
	}
	return ds
}

func named[T metav1.Object](t *testing.T, kind, name string, list []T) T {
	t.Helper()
	for _, v := range list {
		if v.GetName() == name {
			return v
		}
	}
	t.Fatalf("no %s named %s", kind, name)
	var zero T
	return zero
}

func deployment(t *testing.T, o *objects, n string) *appsv1.Deployment {
	return named(t, "Deployment", n, o.deployments)
}
func service(t *testing.T, o *objects, n string) *corev1.Service {
	return named(t, "Service", n, o.services)
}
func configMap(t *testing.T, o *objects, n string) *corev1.ConfigMap {
	return named(t, "ConfigMap", n, o.configMaps)
}
func secret(t *testing.T, o *objects, n string) *corev1.Secret {
	return named(t, "Secret", n, o.secrets)
}
func pdb(t *testing.T, o *objects, n string) *policyv1.PodDisruptionBudget {
	return named(t, "PodDisruptionBudget", n, o.pdbs)
}

func container(t *testing.T, d *appsv1.Deployment, name string) *corev1.Container {
	t.Helper()
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == name {
			return c
		}
	}
	t.Fatalf("deployment %s: no container %s", d.Name, name)
	return nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
