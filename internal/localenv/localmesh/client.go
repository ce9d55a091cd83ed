package localmesh

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/xds"
)

// Client calls a service through istiod as a proxyless gRPC application
// does: the xDS resolver asks istiod (its plaintext xDS port) for the
// service's listeners, routes, clusters and endpoints, and picks a backend
// per request as the VirtualService's weights and matches say.
type Client struct {
	conn *grpc.ClientConn
}

// DialXDS resolves host:port (e.g. reviews.bookinfo.svc.cluster.local:9080)
// through the istiod at xdsAddress, as a workload of namespace.
func DialXDS(xdsAddress, namespace, target string) (*Client, error) {
	bootstrap, err := json.Marshal(map[string]any{
		"xds_servers": []any{map[string]any{
			"server_uri":      xdsAddress,
			"channel_creds":   []any{map[string]any{"type": "insecure"}},
			"server_features": []string{"xds_v3"},
		}},
		"node": map[string]any{
			// Istio's node id: type~IP~pod.namespace~domain.
			"id": fmt.Sprintf("sidecar~127.0.0.1~kubist-client.%[1]s~%[1]s.svc.cluster.local", namespace),
			"metadata": map[string]any{
				// istiod's proxyless gRPC generator.
				"GENERATOR": "grpc", "NAMESPACE": namespace, "CLUSTER_ID": "Kubernetes",
			},
		},
	})
	if err != nil {
		return nil, err
	}
	// The bootstrap is per client rather than the process's environment,
	// so one process may hold clients of several namespaces.
	resolver, err := xds.NewXDSResolverWithConfigForTesting(bootstrap)
	if err != nil {
		return nil, fmt.Errorf("xds resolver: %w", err)
	}
	conn, err := grpc.NewClient("xds:///"+target, grpc.WithResolvers(resolver), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, fmt.Errorf("dial xds:///%s: %w", target, err)
	}
	return &Client{conn: conn}, nil
}

// Call sends one request with the given headers and returns the version
// that served it (from its response header), or the error.
func (c *Client) Call(ctx context.Context, headers map[string]string) (string, error) {
	if len(headers) > 0 {
		ctx = metadata.NewOutgoingContext(ctx, metadata.New(headers))
	}
	var header metadata.MD
	_, err := healthpb.NewHealthClient(c.conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header))
	version := ""
	if v := header.Get(VersionHeader); len(v) > 0 {
		version = v[0]
	}
	return version, err
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Sample is one request a Generator sent.
type Sample struct {
	// Sent is when the request left.
	Sent time.Time
	// Version served it; empty when no backend answered.
	Version string
	// Err is the request's error.
	Err error
}

// Generator sends requests through a Client at a steady rate, with
// headers, and keeps what each request got until Take.
type Generator struct {
	client  *Client
	headers map[string]string
	every   time.Duration

	mu      sync.Mutex
	samples []Sample
	discard bool
	stop    context.CancelFunc
	done    sync.WaitGroup
}

// StartGenerator sends rate requests a second (over workers concurrent
// callers) until Stop.
func StartGenerator(c *Client, rate, workers int, headers map[string]string) (*Generator, error) {
	if rate <= 0 || workers <= 0 {
		return nil, errors.New("rate and workers must be positive")
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Generator{client: c, headers: headers, every: time.Second * time.Duration(workers) / time.Duration(rate), stop: cancel}
	for range workers {
		g.done.Add(1)
		go g.work(ctx)
	}
	return g, nil
}

func (g *Generator) work(ctx context.Context) {
	defer g.done.Done()
	tick := time.NewTicker(g.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		callCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sent := time.Now()
		version, err := g.client.Call(callCtx, g.headers)
		cancel()
		if ctx.Err() != nil {
			return
		}
		g.mu.Lock()
		if !g.discard {
			g.samples = append(g.samples, Sample{Sent: sent, Version: version, Err: err})
		}
		g.mu.Unlock()
	}
}

// Take returns the samples kept since the last Take, in the order they
// were recorded, and forgets them.
func (g *Generator) Take() []Sample {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := g.samples
	g.samples = nil
	return out
}

// Discard has the generator keep no samples from now on: its traffic is
// all that is wanted of it.
func (g *Generator) Discard() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.discard, g.samples = true, nil
}

// Stop stops sending and waits for the requests in flight; stopping a
// stopped generator does nothing.
func (g *Generator) Stop() {
	g.stop()
	g.done.Wait()
}
