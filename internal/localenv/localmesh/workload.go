package localmesh

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	istioapi "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// VersionHeader is the response header in which a backend names its
// version, so a client can tell which subset served it.
const VersionHeader = "x-kubist-version"

// Backend is one version of a service: a plain gRPC server on loopback
// serving the standard health service, standing in for that version's
// pods. It names its version in every response, fails the share of
// requests set by SetErrorRate with UNAVAILABLE, and reports what it
// served to a Telemetry as its sidecar would.
type Backend struct {
	// Namespace, Service and Version say what the backend serves.
	Namespace, Service, Version string
	// Address is host:port on loopback.
	Address string

	server    *grpc.Server
	telemetry *Telemetry

	mu        sync.Mutex
	errorRate float64
	served    int
}

// StartBackend serves one version of a service on a free loopback port.
// telemetry may be nil.
func StartBackend(namespace, service, version string, telemetry *Telemetry) (*Backend, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Backend{Namespace: namespace, Service: service, Version: version, Address: l.Addr().String(), telemetry: telemetry}
	b.server = grpc.NewServer(grpc.UnaryInterceptor(b.intercept))
	healthpb.RegisterHealthServer(b.server, health.NewServer())
	go func() { _ = b.server.Serve(l) }()
	return b, nil
}

// Port is the backend's port.
func (b *Backend) Port() int {
	_, port, _ := net.SplitHostPort(b.Address)
	p, _ := strconv.Atoi(port)
	return p
}

// SetErrorRate makes the backend fail that share (0 to 1) of its requests.
func (b *Backend) SetErrorRate(rate float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errorRate = rate
}

// Served counts the requests the backend answered.
func (b *Backend) Served() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.served
}

func (b *Backend) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	_ = grpc.SetHeader(ctx, metadata.Pairs(VersionHeader, b.Version))
	b.mu.Lock()
	b.served++
	fail := b.errorRate > 0 && rand.Float64() < b.errorRate //nolint:gosec // a demo's fault injection, not security
	b.mu.Unlock()
	var resp any
	var err error
	if fail {
		err = status.Error(codes.Unavailable, "injected failure of "+b.Service+" "+b.Version)
	} else {
		resp, err = handler(ctx, req)
	}
	if b.telemetry != nil {
		b.telemetry.record(b.Namespace, b.Service, b.Version, status.Code(err), time.Since(start))
	}
	return resp, err
}

// Stop stops the server at once.
func (b *Backend) Stop() { b.server.Stop() }

// Register publishes the backend to Istio as a WorkloadEntry of its
// namespace, labelled as the version's pods would be (app and version)
// and with its port under the Service's port name, so that the Service
// that selects those labels sends that port's traffic here.
func (b *Backend) Register(ctx context.Context, c client.Client, app, portName string) error {
	we := &networkingv1.WorkloadEntry{ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: b.Service + "-" + b.Version}}
	_, err := controllerutil.CreateOrUpdate(ctx, c, we, func() error {
		we.Labels = map[string]string{"app": app, "version": b.Version}
		we.Spec = istioapi.WorkloadEntry{
			Address: "127.0.0.1",
			Ports:   map[string]uint32{portName: uint32(b.Port())},
			Labels:  map[string]string{"app": app, "version": b.Version},
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("workload entry %s/%s: %w", we.Namespace, we.Name, err)
	}
	return nil
}
