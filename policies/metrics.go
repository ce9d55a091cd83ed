package policies

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
	"sigs.k8s.io/yaml"
)

// MetricsQuery says which metrics the executor needs before a chain runs:
// Istio's standard metrics of one service's subsets, and the custom PromQL
// templates its policies name.
type MetricsQuery struct {
	// Namespace and Service identify the destination service, as Istio's
	// destination_service_namespace and destination_service_name labels.
	Namespace, Service string
	// Subsets are the destination_version values to report.
	Subsets []string
	// Window of the rates, e.g. 1m.
	Window time.Duration
	// Custom PromQL templates; {{subset}}, {{namespace}} and {{service}} are
	// substituted per subset.
	Custom []string
	// Time the metrics are evaluated at.
	Time time.Time
}

// SubsetMetrics are one subset's figures. Absent figures mean no data:
// policies hold on missing metrics.
type SubsetMetrics struct {
	// Requests in the window.
	Requests float64 `json:"requests"`
	// ErrorRate is the share of 5xx responses and failed gRPC calls, 0 to 1;
	// absent without requests.
	ErrorRate *float64 `json:"errorRate,omitempty"`
	// LatencyP99Ms is the 99th percentile of request duration.
	LatencyP99Ms *float64 `json:"latencyP99Ms,omitempty"`
	// Queries holds the value of each custom template that returned one.
	Queries map[string]float64 `json:"queries,omitempty"`
}

// MetricsProvider gathers metrics for a chain.
type MetricsProvider interface {
	Gather(ctx context.Context, q MetricsQuery) (map[string]SubsetMetrics, error)
	// Requests counts each subset's requests over q.Window (its Custom
	// queries aside): the split the mesh served.
	Requests(ctx context.Context, q MetricsQuery) (map[string]float64, error)
	// ScrapeInterval is how often the metrics are sampled: a window shorter
	// than two samples holds no increase.
	ScrapeInterval(ctx context.Context) (time.Duration, error)
}

// Prometheus gathers metrics through the Prometheus HTTP API.
type Prometheus struct {
	api promv1.API

	mu       sync.Mutex
	interval time.Duration
	readAt   time.Time
}

// scrapeIntervalKept is how long a scrape interval read from Prometheus's
// configuration is used before it is read again (a reload may change it).
const scrapeIntervalKept = 5 * time.Minute

// ScrapeInterval is the longest scrape interval in Prometheus's
// configuration (the global one and every job's), read through its API
// (/api/v1/status/config) and kept for a few minutes.
func (p *Prometheus) ScrapeInterval(ctx context.Context) (time.Duration, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.readAt.IsZero() && time.Since(p.readAt) < scrapeIntervalKept {
		return p.interval, nil
	}
	cfg, err := p.api.Config(ctx)
	if err != nil {
		return 0, fmt.Errorf("prometheus configuration: %w", err)
	}
	interval, err := longestScrapeInterval(cfg.YAML)
	if err != nil {
		return 0, err
	}
	p.interval, p.readAt = interval, time.Now()
	return interval, nil
}

// longestScrapeInterval reads the longest scrape_interval of a Prometheus
// configuration, global or per job (Prometheus writes each job's out when
// it serves its configuration); Prometheus's default, 1m, without one.
func longestScrapeInterval(config string) (time.Duration, error) {
	var cfg struct {
		Global struct {
			ScrapeInterval string `json:"scrape_interval"`
		} `json:"global"`
		ScrapeConfigs []struct {
			ScrapeInterval string `json:"scrape_interval"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		return 0, fmt.Errorf("prometheus configuration: %w", err)
	}
	intervals := []string{cfg.Global.ScrapeInterval}
	for _, job := range cfg.ScrapeConfigs {
		intervals = append(intervals, job.ScrapeInterval)
	}
	longest := time.Duration(0)
	for _, s := range intervals {
		if s == "" {
			continue
		}
		d, err := model.ParseDuration(s)
		if err != nil {
			return 0, fmt.Errorf("prometheus configuration: scrape_interval %q: %w", s, err)
		}
		longest = max(longest, time.Duration(d))
	}
	if longest == 0 {
		longest = time.Minute
	}
	return longest, nil
}

// NewPrometheus returns a provider for the Prometheus at address
// (http://host:port); rt may be nil for the default transport.
func NewPrometheus(address string, rt http.RoundTripper) (*Prometheus, error) {
	client, err := api.NewClient(api.Config{Address: address, RoundTripper: rt})
	if err != nil {
		return nil, fmt.Errorf("prometheus %s: %w", address, err)
	}
	return &Prometheus{api: promv1.NewAPI(client)}, nil
}

// Requests counts each subset's requests over the window, by
// destination_version.
func (p *Prometheus) Requests(ctx context.Context, q MetricsQuery) (map[string]float64, error) {
	if q.Window <= 0 {
		return nil, errors.New("metrics window must be positive")
	}
	return p.byVersion(ctx, fmt.Sprintf(`sum by (destination_version) (increase(istio_requests_total{%s}[%s]))`,
		istioSelector(q), model.Duration(q.Window).String()), q.Time)
}

// Gather queries requests, error rate (5xx responses and failed gRPC calls)
// and p99 latency per subset (three
// queries in all, grouped by destination_version) and each custom template
// per subset. A subset without data is absent from the result; a custom
// query without a value is absent from its Queries.
func (p *Prometheus) Gather(ctx context.Context, q MetricsQuery) (map[string]SubsetMetrics, error) {
	if q.Window <= 0 {
		return nil, errors.New("metrics window must be positive")
	}
	if len(q.Subsets) == 0 {
		return map[string]SubsetMetrics{}, nil
	}
	selector := istioSelector(q)
	window := model.Duration(q.Window).String()
	requests, err := p.Requests(ctx, q)
	if err != nil {
		return nil, err
	}
	// An error is a 5xx response, or a gRPC status other than OK: Envoy
	// reports a failed gRPC call with response_code 200 and its status in
	// grpc_response_status.
	errorsByVersion, err := p.byVersion(ctx, fmt.Sprintf(
		`sum by (destination_version) (increase(istio_requests_total{%[1]s,response_code=~"5.."}[%[2]s]) or increase(istio_requests_total{%[1]s,response_code!~"5..",grpc_response_status=~"[1-9][0-9]*"}[%[2]s]))`,
		selector, window), q.Time)
	if err != nil {
		return nil, err
	}
	p99, err := p.byVersion(ctx, fmt.Sprintf(
		`histogram_quantile(0.99, sum by (destination_version, le) (rate(istio_request_duration_milliseconds_bucket{%s}[%s])))`, selector, window), q.Time)
	if err != nil {
		return nil, err
	}

	out := map[string]SubsetMetrics{}
	for _, subset := range q.Subsets {
		total, ok := requests[subset]
		if !ok {
			continue
		}
		m := SubsetMetrics{Requests: total}
		if total > 0 {
			rate := errorsByVersion[subset] / total
			m.ErrorRate = &rate
		}
		if v, ok := p99[subset]; ok && !math.IsNaN(v) {
			m.LatencyP99Ms = &v
		}
		out[subset] = m
	}
	for _, template := range q.Custom {
		for _, subset := range q.Subsets {
			v, ok, err := p.scalar(ctx, expandTemplate(template, q, subset), q.Time)
			if err != nil {
				return nil, fmt.Errorf("custom query %q for subset %s: %w", template, subset, err)
			}
			if !ok {
				continue
			}
			m := out[subset]
			if m.Queries == nil {
				m.Queries = map[string]float64{}
			}
			m.Queries[template] = v
			out[subset] = m
		}
	}
	return out, nil
}

// AsInput converts gathered metrics into the chain input's metrics object.
func AsInput(metrics map[string]SubsetMetrics) map[string]any {
	out := make(map[string]any, len(metrics))
	for subset, m := range metrics {
		entry := map[string]any{"requests": m.Requests}
		if m.ErrorRate != nil {
			entry["errorRate"] = *m.ErrorRate
		}
		if m.LatencyP99Ms != nil {
			entry["latencyP99Ms"] = *m.LatencyP99Ms
		}
		if len(m.Queries) > 0 {
			queries := make(map[string]any, len(m.Queries))
			for k, v := range m.Queries {
				queries[k] = v
			}
			entry["queries"] = queries
		}
		out[subset] = entry
	}
	return out
}

// Queries returns the custom PromQL templates the chain's policies name.
func (c Chain) Queries() []string {
	seen := map[string]bool{}
	var out []string
	for _, step := range c {
		for _, name := range step.Policy.Queries {
			if q, ok := step.Parameters[name].(string); ok && q != "" && !seen[q] {
				seen[q] = true
				out = append(out, q)
			}
		}
	}
	return out
}

var labelValueEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

func istioSelector(q MetricsQuery) string {
	versions := make([]string, len(q.Subsets))
	for i, s := range q.Subsets {
		versions[i] = regexp.QuoteMeta(s)
	}
	sort.Strings(versions)
	return fmt.Sprintf(`reporter="destination",destination_service_namespace="%s",destination_service_name="%s",destination_version=~"%s"`,
		labelValueEscaper.Replace(q.Namespace), labelValueEscaper.Replace(q.Service),
		labelValueEscaper.Replace(strings.Join(versions, "|")))
}

func expandTemplate(template string, q MetricsQuery, subset string) string {
	return strings.NewReplacer(
		"{{subset}}", labelValueEscaper.Replace(subset),
		"{{namespace}}", labelValueEscaper.Replace(q.Namespace),
		"{{service}}", labelValueEscaper.Replace(q.Service),
	).Replace(template)
}

// byVersion runs an instant query and returns its samples by destination_version.
func (p *Prometheus) byVersion(ctx context.Context, query string, at time.Time) (map[string]float64, error) {
	value, _, _, err := p.api.Query(ctx, query, at)
	if err != nil {
		return nil, fmt.Errorf("prometheus query %s: %w", query, err)
	}
	vector, ok := value.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("prometheus query %s: want a vector, got %s", query, value.Type())
	}
	out := make(map[string]float64, len(vector))
	for _, s := range vector {
		out[string(s.Metric["destination_version"])] = float64(s.Value)
	}
	return out, nil
}

// scalar runs an instant query that must yield one number; ok is false when
// it yields none (no data, or NaN).
func (p *Prometheus) scalar(ctx context.Context, query string, at time.Time) (float64, bool, error) {
	value, _, _, err := p.api.Query(ctx, query, at)
	if err != nil {
		return 0, false, err
	}
	var v float64
	switch x := value.(type) {
	case model.Vector:
		if len(x) == 0 {
			return 0, false, nil
		}
		if len(x) > 1 {
			return 0, false, fmt.Errorf("returned %d series; a custom query must return one number per subset", len(x))
		}
		v = float64(x[0].Value)
	case *model.Scalar:
		v = float64(x.Value)
	default:
		return 0, false, fmt.Errorf("returned a %s; a custom query must return one number", value.Type())
	}
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, false, nil
	}
	return v, true, nil
}
