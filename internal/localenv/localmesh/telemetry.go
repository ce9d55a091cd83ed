package localmesh

import (
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

// Telemetry exports what the backends served as Istio's standard metrics,
// as the destination's sidecar would report them: istio_requests_total
// and istio_request_duration_milliseconds with reporter="destination",
// the destination service, its version, and the response's HTTP status
// (200 for gRPC, as Envoy reports it) and gRPC status. It stands in for
// the sidecars' telemetry, which no proxy here produces.
type Telemetry struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	server   *http.Server
	// Address is where Prometheus scrapes it, host:port on loopback.
	Address string
}

// istioLabels are the labels of Istio's standard metrics that Kubist reads.
var istioLabels = []string{"reporter", "request_protocol", "destination_service_namespace", "destination_service_name",
	"destination_version", "response_code", "grpc_response_status"}

// NewTelemetry serves the metrics on a free loopback port.
func NewTelemetry() (*Telemetry, error) {
	t := &Telemetry{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total", Help: "Requests served, as Istio's sidecars count them.",
		}, istioLabels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "istio_request_duration_milliseconds", Help: "Request durations, as Istio's sidecars measure them.",
			// Istio's default buckets.
			Buckets: []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000},
		}, istioLabels),
	}
	t.registry.MustRegister(t.requests, t.duration)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	t.Address = l.Addr().String()
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(t.registry, promhttp.HandlerOpts{}))
	t.server = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = t.server.Serve(l) }()
	return t, nil
}

func (t *Telemetry) record(namespace, service, version string, code codes.Code, took time.Duration) {
	labels := prometheus.Labels{
		"reporter": "destination", "request_protocol": "grpc",
		"destination_service_namespace": namespace, "destination_service_name": service,
		"destination_version": version, "response_code": "200", "grpc_response_status": strconv.Itoa(int(code)),
	}
	t.requests.With(labels).Inc()
	t.duration.With(labels).Observe(float64(took) / float64(time.Millisecond))
}

// Close stops serving.
func (t *Telemetry) Close() error { return t.server.Close() }
