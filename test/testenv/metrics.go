package testenv

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricSum scrapes a Prometheus endpoint (http or https) and sums the
// counters and gauges of one family; 0 when the family is absent. A token
// is sent as a bearer token; an https endpoint's certificate is not
// verified (the manager's metrics certificate is self-signed, as the
// chart's ServiceMonitor assumes: the token authenticates).
func MetricSum(url, token, family string) (float64, error) {
	sums, err := MetricSums(url, token, family)
	return sums[family], err
}

// MetricSums is MetricSum for several families, from one scrape.
func MetricSums(url, token string, families ...string) (map[string]float64, error) {
	scraped, err := metricFamilies(url, token)
	if err != nil {
		return nil, err
	}
	sums := make(map[string]float64, len(families))
	for _, family := range families {
		for _, m := range scraped[family].GetMetric() {
			sums[family] += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sums, nil
}

// MetricLabelValues is the set of values a label takes across the series
// of a metric family at url.
func MetricLabelValues(url, family, label string) (map[string]bool, error) {
	families, err := metricFamilies(url, "")
	if err != nil {
		return nil, err
	}
	values := map[string]bool{}
	for _, m := range families[family].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label {
				values[l.GetValue()] = true
			}
		}
	}
	return values, nil
}

// metricFamilies reads and parses the Prometheus text at url.
func metricFamilies(url, token string) (map[string]*dto.MetricFamily, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // self-signed metrics certificate
	}}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s\n%s", url, resp.Status, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return families, nil
}
