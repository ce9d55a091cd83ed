package chart

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	// The manager, with every package that registers a metric.
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	_ "github.com/kubist-io/kubist/internal/manager/app"
)

const dashboardFile = "../../charts/kubist/dashboards/kubist.json"

// checkGrafana: the dashboard's ConfigMap is rendered only when enabled,
// labelled for Grafana's sidecar, with the chart's dashboard as it is.
func checkGrafana(t *testing.T, r *rendered, v map[string]any) {
	t.Helper()
	var maps []*corev1.ConfigMap
	for _, o := range r.byKind["ConfigMap"] {
		if cm := o.(*corev1.ConfigMap); strings.HasSuffix(cm.Name, "-grafana-dashboard") {
			maps = append(maps, cm)
		}
	}
	if !flag(v, false, "grafana", "dashboard", "enabled") {
		if len(maps) != 0 {
			t.Error("the Grafana dashboard is rendered although disabled")
		}
		return
	}
	if len(maps) != 1 {
		t.Fatalf("%d Grafana dashboard ConfigMaps rendered, want 1", len(maps))
	}
	cm := maps[0]
	if cm.Labels["grafana_dashboard"] != "1" {
		t.Errorf("the dashboard's labels %v lack grafana_dashboard: \"1\", which Grafana's sidecar selects", cm.Labels)
	}
	want, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["kubist.json"]; got != strings.TrimRight(string(want), "\n") {
		t.Errorf("the ConfigMap's kubist.json differs from %s", dashboardFile)
	}
	if !json.Valid([]byte(cm.Data["kubist.json"])) {
		t.Error("the rendered dashboard is not valid JSON")
	}
}

// grafanaDashboard is what the test reads of a dashboard.
type grafanaDashboard struct {
	UID        string         `json:"uid"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	Title   string         `json:"title"`
	Type    string         `json:"type"`
	Panels  []grafanaPanel `json:"panels"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

// queries are every PromQL expression of the dashboard, by where it is.
func (d *grafanaDashboard) queries() map[string]string {
	out := map[string]string{}
	var walk func([]grafanaPanel)
	walk = func(panels []grafanaPanel) {
		for _, p := range panels {
			for i, target := range p.Targets {
				out[p.Title+"#"+string(rune('A'+i))] = target.Expr
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if strings.HasPrefix(v.Definition, "label_values(") {
			// label_values(metric, label): the metric is the query.
			metric, _, _ := strings.Cut(strings.TrimPrefix(v.Definition, "label_values("), ",")
			out["variable "+v.Name] = metric
		}
	}
	return out
}

// exportedMetrics are the names of every metric the manager registers,
// histograms with their series' suffixes.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	collector, ok := ctrlmetrics.Registry.(prometheus.Collector)
	if !ok {
		t.Fatalf("controller-runtime's registry %T cannot describe its metrics", ctrlmetrics.Registry)
	}
	descs := make(chan *prometheus.Desc, 64)
	go func() { collector.Describe(descs); close(descs) }()
	fqName := regexp.MustCompile(`fqName: "([^"]+)"`)
	names := map[string]bool{}
	for d := range descs {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
				names[m[1]+suffix] = true
			}
		}
	}
	return names
}

// metricName finds the metric names of a query: identifiers followed by
// a selector, a range, a closing parenthesis or the end, not functions,
// keywords or label names.
var metricName = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|\[|\)|,|$)`)

func TestGrafanaDashboardQueriesExportedMetrics(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s is not a dashboard: %v", dashboardFile, err)
	}
	queries := d.queries()
	if len(queries) < 20 {
		t.Fatalf("%d queries found in the dashboard: the test does not read it", len(queries))
	}
	exported := exportedMetrics(t)
	for _, must := range []string{"kubist_executor_runs_total", "kubist_release_steps_total", "controller_runtime_webhook_latency_seconds_bucket", "kubist_notifications_sent_total"} {
		if !exported[must] {
			t.Fatalf("the manager does not register %s: the test reads the wrong registry", must)
		}
	}
	labels := regexp.MustCompile(`(by|without)\s*\([^)]*\)`)
	for where, expr := range queries {
		var names []string
		for _, m := range metricName.FindAllStringSubmatch(labels.ReplaceAllString(expr, ""), -1) {
			if !slices.Contains([]string{"by", "without", "le"}, m[1]) && !strings.HasPrefix(m[1], "__") {
				names = append(names, m[1])
			}
		}
		if len(names) == 0 {
			t.Errorf("%s: no metric found in %q", where, expr)
		}
		for _, name := range names {
			if !exported[name] {
				t.Errorf("%s: %q queries %s, which the manager does not export", where, expr, name)
			}
		}
	}

	// And a real Prometheus parses every query.
	if _, err := localmesh.PrometheusBinary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skipf("no Prometheus to parse the queries: %v", err)
	}
	prom, err := localmesh.StartPrometheus(t.TempDir(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()
	grafanaVars := strings.NewReplacer("$__rate_interval", "1m", "$__range", "1h", "$namespace", ".*")
	for where, expr := range queries {
		res, err := http.Get(prom.URL + "/api/v1/query?query=" + url.QueryEscape(grafanaVars.Replace(expr)))
		if err != nil {
			t.Fatal(err)
		}
		var answer struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		err = json.NewDecoder(res.Body).Decode(&answer)
		_ = res.Body.Close()
		if err != nil || answer.Status != "success" {
			t.Errorf("%s: Prometheus refuses %q: %s (%v)", where, expr, answer.Error, err)
		}
	}
	if d.UID == "" || filepath.Base(dashboardFile) != "kubist.json" {
		t.Error("the dashboard needs a stable uid")
	}
}
