package testenv

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"
)

// SubsetTraffic is what an Istio-shaped exporter reports for one version of
// a service at every scrape: requests by response code, and how many
// requests fall in each latency bucket (upper bound in ms; +Inf is implied).
type SubsetTraffic struct {
	Namespace, Service, Version string
	// Reporter is Istio's reporter label; empty means "destination".
	Reporter string
	// Codes counts requests per response code added at each scrape.
	Codes map[string]int
	// Latency counts requests per bucket upper bound (ms) at each scrape.
	Latency map[float64]int
}

// IstioExporter serves Istio's standard metrics with known values:
// istio_requests_total and istio_request_duration_milliseconds_bucket.
// Counters grow by each subset's traffic at every scrape.
type IstioExporter struct {
	*httptest.Server
	mu      sync.Mutex
	traffic []SubsetTraffic
	scrapes int
	// series holds every counter's value, by series name and labels.
	series map[string]float64
}

// NewIstioExporter starts an exporter on loopback.
func NewIstioExporter(traffic ...SubsetTraffic) *IstioExporter {
	e := &IstioExporter{traffic: traffic, series: map[string]float64{}}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	return e
}

// AddTraffic adds subsets' traffic to every scrape from now on.
func (e *IstioExporter) AddTraffic(traffic ...SubsetTraffic) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.traffic = append(e.traffic, traffic...)
}

// Target is the exporter's host:port for a scrape config.
func (e *IstioExporter) Target() string { return strings.TrimPrefix(e.URL, "http://") }

// Scrapes counts the scrapes served so far.
func (e *IstioExporter) Scrapes() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.scrapes
}

func (e *IstioExporter) serve(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.scrapes++
	series := e.series
	traffic := e.traffic
	for _, t := range traffic {
		reporter := t.Reporter
		if reporter == "" {
			reporter = "destination"
		}
		labels := fmt.Sprintf(`reporter=%q,destination_service_namespace=%q,destination_service_name=%q,destination_version=%q`,
			reporter, t.Namespace, t.Service, t.Version)
		for code, n := range t.Codes {
			series[fmt.Sprintf(`istio_requests_total{%s,response_code=%q}`, labels, code)] += float64(n)
		}
		bounds := make([]float64, 0, len(t.Latency))
		for b := range t.Latency {
			bounds = append(bounds, b)
		}
		sort.Float64s(bounds)
		cumulative := 0
		for _, b := range bounds {
			cumulative += t.Latency[b]
			series[fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="%g"}`, labels, b)] += float64(cumulative)
		}
		series[fmt.Sprintf(`istio_request_duration_milliseconds_bucket{%s,le="+Inf"}`, labels)] += float64(cumulative)
	}
	names := make([]string, 0, len(series))
	for name := range series {
		names = append(names, name)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	for _, family := range []struct{ prefix, typeLine string }{
		{"istio_requests_total{", "# TYPE istio_requests_total counter"},
		{"istio_request_duration_milliseconds_bucket{", "# TYPE istio_request_duration_milliseconds histogram"},
	} {
		fmt.Fprintln(w, family.typeLine)
		for _, name := range names {
			if strings.HasPrefix(name, family.prefix) {
				fmt.Fprintf(w, "%s %g\n", name, series[name])
			}
		}
	}
}

// WaitForScrapes waits until Prometheus has scraped the exporter n times.
func (e *IstioExporter) WaitForScrapes(ctx context.Context, n int) error {
	for e.Scrapes() < n {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d scrapes after waiting, want %d: %w", e.Scrapes(), n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
