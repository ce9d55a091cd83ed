package policies

import (
	"context"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/test/testenv"
)

// requirePrometheus returns Prometheus's path; without it the test skips
// locally and fails under CI, where .ci/run installs it.
func requirePrometheus(t *testing.T) {
	t.Helper()
	if _, err := localmesh.PrometheusBinary(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
}

// TestPrometheusGather runs a real Prometheus scraping an exporter with
// known Istio-shaped traffic, and checks the provider's figures against it.
func TestPrometheusGather(t *testing.T) {
	requirePrometheus(t)
	reviews := func(version string, codes map[string]int, latency map[float64]int) testenv.SubsetTraffic {
		return testenv.SubsetTraffic{Namespace: "bookinfo", Service: "reviews", Version: version, Codes: codes, Latency: latency}
	}
	exporter := testenv.NewIstioExporter(
		// v1: 100 requests per scrape, 2 of them 5xx; 90 under 25 ms, 10 under 50 ms.
		reviews("v1", map[string]int{"200": 98, "503": 2}, map[float64]int{25: 90, 50: 10, 100: 0}),
		// v2: 50 requests per scrape, half 5xx; all between 50 and 100 ms.
		reviews("v2", map[string]int{"200": 25, "500": 25}, map[float64]int{25: 0, 50: 0, 100: 50}),
		// Noise that must not count: the client side's view and another service.
		testenv.SubsetTraffic{Namespace: "bookinfo", Service: "reviews", Version: "v1", Reporter: "source", Codes: map[string]int{"503": 1000}},
		testenv.SubsetTraffic{Namespace: "bookinfo", Service: "ratings", Version: "v1", Codes: map[string]int{"500": 1000}},
	)
	defer exporter.Close()
	prom, err := localmesh.StartPrometheus(t.TempDir(), 200*time.Millisecond, exporter.Target())
	if err != nil {
		t.Fatal(err)
	}
	defer prom.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := exporter.WaitForScrapes(ctx, 6); err != nil {
		t.Fatal(err)
	}
	// Let the last scrape be ingested.
	time.Sleep(300 * time.Millisecond)

	provider, err := NewPrometheus(prom.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	if interval, err := provider.ScrapeInterval(ctx); err != nil || interval != 200*time.Millisecond {
		t.Errorf("ScrapeInterval = %v, %v; want the 200ms Prometheus was started with", interval, err)
	}
	errorRateQuery := `sum(increase(istio_requests_total{reporter="destination",destination_service_name="{{service}}",destination_version="{{subset}}",response_code=~"5.."}[1m])) / sum(increase(istio_requests_total{reporter="destination",destination_service_name="{{service}}",destination_version="{{subset}}"}[1m]))`
	got, err := provider.Gather(ctx, MetricsQuery{
		Namespace: "bookinfo", Service: "reviews",
		Subsets: []string{"v1", "v2", "v3"},
		Window:  time.Minute,
		Custom:  []string{errorRateQuery},
		Time:    time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}

	if _, ok := got["v3"]; ok {
		t.Errorf("v3 has no traffic, so it must have no metrics; got %+v", got["v3"])
	}
	v1, v2 := got["v1"], got["v2"]
	exact := func(name string, got *float64, want float64) {
		t.Helper()
		if got == nil || math.Abs(*got-want) > 1e-9 {
			t.Errorf("%s = %v, want %v", name, deref(got), want)
		}
	}
	exact("v1 errorRate", v1.ErrorRate, 0.02)
	exact("v2 errorRate", v2.ErrorRate, 0.5)
	// histogram_quantile interpolates within the bucket holding the 99th
	// request: v1 in (25, 50]: 25 + 25 × (99 − 90)/10; v2 in (50, 100]: 50 + 50 × 49.5/50.
	exact("v1 latencyP99Ms", v1.LatencyP99Ms, 47.5)
	exact("v2 latencyP99Ms", v2.LatencyP99Ms, 99.5)
	// Both are scraped together, so extrapolation cannot change their ratio.
	if v1.Requests <= 0 || math.Abs(v1.Requests/v2.Requests-2) > 1e-9 {
		t.Errorf("requests v1 = %v, v2 = %v; want v1 = 2 × v2", v1.Requests, v2.Requests)
	}
	if q, ok := v2.Queries[errorRateQuery]; !ok || math.Abs(q-0.5) > 1e-9 {
		t.Errorf("custom query for v2 = %v (present %v), want 0.5", q, ok)
	}
	if q := v1.Queries[errorRateQuery]; math.Abs(q-0.02) > 1e-9 {
		t.Errorf("custom query for v1 = %v, want 0.02", q)
	}
	t.Logf("v1: %+v; v2: %+v", describe(v1), describe(v2))

	// The figures reach the policies as the chain input's metrics: with v2
	// as the canary, its 50% errors roll it back; with v1, it steps.
	r, err := NewPredefinedRegistry(ctx, newTestCompiler(t))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := r.Policy("HealthBasedCanaryRelease")
	chain, err := NewStep(p, map[string]any{"step": int64(10), "period": "30s", "maxErrorRate": 0.3, "minRequests": int64(20), "rollback": "immediate"})
	if err != nil {
		t.Fatal(err)
	}
	for canary, want := range map[string]string{"v2": "RollBack", "v1": "Step"} {
		baseline := map[string]string{"v1": "v2", "v2": "v1"}[canary]
		res, err := Chain{chain}.Run(ctx, Input{
			Kind: "CanaryRelease",
			State: map[string]any{"baseline": baseline, "canary": canary, "phase": "Progressing",
				"weights": map[string]any{baseline: 80, canary: 20}, "lastStepTime": "2026-11-24T11:00:00Z"},
			Metrics: AsInput(got),
			Now:     time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC),
		})
		if err != nil {
			t.Fatal(err)
		}
		if outcome := res.Steps[0].Decision.Outcome; outcome != want {
			t.Errorf("canary %s: outcome %s, want %s (%s)", canary, outcome, want, res.Steps[0].Decision.Message)
		}
	}
}

// TestPrometheusUnreachable: no Prometheus is an error, never empty metrics
// that would read as "no traffic".
func TestPrometheusUnreachable(t *testing.T) {
	port, err := controlplane.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	provider, err := NewPrometheus(fmt.Sprintf("http://127.0.0.1:%d", port), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := provider.Gather(ctx, MetricsQuery{Service: "reviews", Subsets: []string{"v1"}, Window: time.Minute, Time: time.Now()}); err == nil {
		t.Fatal("want an error when Prometheus is unreachable")
	}
}

func deref(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

func describe(m SubsetMetrics) map[string]any {
	return map[string]any{"requests": m.Requests, "errorRate": deref(m.ErrorRate), "p99": deref(m.LatencyP99Ms)}
}

func TestLongestScrapeInterval(t *testing.T) {
	for _, c := range []struct {
		config string
		want   time.Duration
	}{
		{"global:\n  scrape_interval: 15s\nscrape_configs:\n- job_name: a\n  scrape_interval: 15s\n- job_name: b\n  scrape_interval: 1m30s\n", 90 * time.Second},
		{"global:\n  scrape_interval: 200ms\n", 200 * time.Millisecond},
		{"scrape_configs: []\n", time.Minute},
	} {
		got, err := longestScrapeInterval(c.config)
		if err != nil || got != c.want {
			t.Errorf("longestScrapeInterval(%q) = %v, %v; want %v", c.config, got, err, c.want)
		}
	}
	if _, err := longestScrapeInterval("global:\n  scrape_interval: soon\n"); err == nil || !strings.Contains(err.Error(), `scrape_interval "soon"`) {
		t.Errorf("a bad interval gave %v; want an error naming it", err)
	}
}
