package k8scheck

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// exportedMetrics returns the names of callpop's own metrics, read from the
// code (every `Name: "callpop_…"` outside tests), with their histograms'
// _bucket, _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	re := regexp.MustCompile(`Name:\s+"(callpop_[a-z0-9_]+)"`)
	hist := regexp.MustCompile(`NewHistogram(Vec)?\(prometheus\.HistogramOpts\{\s*Name:\s+"(callpop_[a-z0-9_]+)"`)
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			names[string(m[1])] = true
		}
		for _, m := range hist.FindAllSubmatch(b, -1) {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				names[string(m[2])+s] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !names["callpop_webhooks_total"] || !names["callpop_frame_delay_seconds_bucket"] || !names["callpop_build_info"] {
		t.Fatalf("the metric names were not found in the code: %v", names)
	}
	return names
}

var (
	promQLGroupings = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promQLStrings   = regexp.MustCompile(`"(\\.|[^"\\])*"`)
	promQLMatchers  = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promQLIdent     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*\s*\(?`)
	promQLKeywords  = map[string]bool{"and": true, "or": true, "unless": true, "offset": true, "bool": true, "inf": true, "nan": true}
)

// metricNames returns the metric names a PromQL expression reads: its
// identifiers that are neither functions, keywords, labels nor numbers.
func metricNames(expr string) []string {
	e := promQLStrings.ReplaceAllString(expr, `""`)
	e = promQLGroupings.ReplaceAllString(e, "")
	e = promQLMatchers.ReplaceAllString(e, "")
	var names []string
	for _, id := range promQLIdent.FindAllString(e, -1) {
		if strings.HasSuffix(id, "(") || promQLKeywords[strings.ToLower(strings.TrimSpace(id))] {
			continue
		}
		names = append(names, strings.TrimSpace(id))
	}
	return names
}

func TestMetricNamesOfAPromQLExpression(t *testing.T) {
	t.Parallel()
	got := metricNames(`histogram_quantile(0.99, sum by (le, stage) (rate(callpop_frame_delay_seconds_bucket{stage="written",job=~"$job"}[$__rate_interval]))) > 0.5 and on (job) callpop_build_info / process_max_fds`)
	want := []string{"callpop_frame_delay_seconds_bucket", "callpop_build_info", "process_max_fds"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("metricNames = %v, want %v", got, want)
	}
}

// TestGrafanaDashboardReadsCallpopsMetrics: deploy/grafana/callpop.json is
// a dashboard (valid JSON with panels), and every query names only metrics
// callpop exports (its own, documented in docs/operations.md, or the Go
// client's process_ and go_ ones).
func TestGrafanaDashboardReadsCallpopsMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../grafana/callpop.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("callpop.json: %v", err)
	}
	if dash.Title == "" || dash.UID == "" || len(dash.Panels) == 0 {
		t.Fatalf("callpop.json: no title, uid or panels")
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if q, ok := v.Query.(string); ok && strings.HasPrefix(q, "label_values(") {
			// label_values(selector, label): the selector only.
			sel := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
			if i := strings.LastIndex(sel, ","); i >= 0 {
				sel = sel[:i]
			}
			exprs = append(exprs, sel)
		}
	}
	checkMetricNames(t, "callpop.json", exprs, nil)
	for _, want := range []string{"callpop_sessions", "callpop_webhooks_total", "callpop_frame_delay_seconds_bucket",
		"callpop_requests_refused_total", "callpop_sessions_dropped_total"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("callpop.json shows no %s", want)
		}
	}
}

// TestAlertRulesReadCallpopsMetrics: deploy/prometheus/alerts.yaml names
// only metrics callpop exports, besides Prometheus' up and
// kube-state-metrics' readiness.
func TestAlertRulesReadCallpopsMetrics(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Expr string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	checkMetricNames(t, "alerts.yaml", exprs, map[string]bool{"up": true, "kube_pod_container_status_ready": true})
}

func checkMetricNames(t *testing.T, file string, exprs []string, others map[string]bool) {
	t.Helper()
	exported := exportedMetrics(t)
	var docs []byte
	for _, f := range []string{"../../docs/operations.md", "../../docs/forwarding.md"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b...)
	}
	for _, e := range exprs {
		names := metricNames(e)
		if len(names) == 0 {
			t.Errorf("%s: %q reads no metric", file, e)
		}
		for _, n := range names {
			switch {
			case others[n], strings.HasPrefix(n, "process_"), strings.HasPrefix(n, "go_"):
			case !exported[n]:
				t.Errorf("%s: %q reads %s, which callpop does not export", file, e, n)
			case !strings.Contains(string(docs), strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, "_bucket"), "_count"), "_sum")):
				t.Errorf("%s: %s is not in docs/operations.md's metrics table", file, n)
			}
		}
	}
}
