//go:build !manager_only

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/internal/localenv/localmesh"
)

// DemoErrorRateAnnotation on a demo Deployment (reviews-v1, reviews-v2, or
// one of your own) makes its backend fail that share of its requests, from
// 0 to 1.
const DemoErrorRateAnnotation = "kubist.io/demo-error-rate"

// The demo's service, as the samples declare it.
const (
	demoNamespace = "bookinfo"
	demoApp       = "reviews"
	demoPortName  = "http"
	demoTarget    = "reviews.bookinfo.svc.cluster.local:9080"
	// demoRate is the demo client's requests per second.
	demoRate = 100
)

// demoMesh is what stands in for the sample's pods and their sidecars:
// istiod as its Deployment's pod, one gRPC backend per version registered
// with Istio, the telemetry their sidecars would export, and a client
// calling the sample Route through istiod's xDS.
type demoMesh struct {
	istiod    *localmesh.Istiod
	mu        sync.Mutex
	backends  map[string]*localmesh.Backend
	client    *localmesh.Client
	generator *localmesh.Generator
}

// startDemoMesh waits for the istiod Deployment the sample Cluster's
// executor installs, runs istiod for it, then starts the backends and the
// client. It stops what it started on error.
func startDemoMesh(ctx context.Context, log logr.Logger, istio *localmesh.Istio, c client.Client, kubeconfig []byte, telemetry *localmesh.Telemetry, dir string) (m *demoMesh, err error) {
	m = &demoMesh{backends: map[string]*localmesh.Backend{}}
	defer func() {
		if err != nil {
			err = errors.Join(err, m.stop())
		}
	}()
	log.Info("Waiting for the Cluster's executor to install Istio's charts, to run istiod as their Deployment's pod", "istio", istio.Version)
	waitCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if m.istiod, err = localmesh.StartIstiod(waitCtx, istio, c, localmesh.IstiodOptions{Kubeconfig: kubeconfig, WorkDir: dir}); err != nil {
		return m, err
	}
	log.Info("istiod is ready", "xds", m.istiod.XDSAddress, "log", m.istiod.LogPath)
	// The backends follow the namespace's Deployments of the app: one per
	// version label, ready before the client starts.
	if err := m.followDeployments(ctx, c, telemetry); err != nil {
		return m, err
	}
	if m.client, err = localmesh.DialXDS(m.istiod.XDSAddress, demoNamespace, demoTarget); err != nil {
		return m, err
	}
	if m.generator, err = localmesh.StartGenerator(m.client, demoRate, 2, nil); err != nil {
		return m, err
	}
	// The backends' telemetry is what Prometheus and Kubist read.
	m.generator.Discard()
	go func() {
		for ctx.Err() == nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			if err := m.followDeployments(ctx, c, telemetry); err != nil && ctx.Err() == nil {
				log.Error(err, "The demo's backends do not follow the Deployments")
			}
		}
	}()
	return m, nil
}

// followDeployments stands in for the kubelet and the pods of the demo
// namespace's Deployments of the app: a backend per version label,
// started (registered with Istio as a WorkloadEntry, the Deployment
// marked available) when its Deployment appears, stopped when it goes, and
// failing the share of requests its DemoErrorRateAnnotation says.
func (m *demoMesh) followDeployments(ctx context.Context, c client.Client, telemetry *localmesh.Telemetry) error {
	var list appsv1.DeploymentList
	if err := c.List(ctx, &list, client.InNamespace(demoNamespace), client.MatchingLabels{"app": demoApp}); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for i := range list.Items {
		d := &list.Items[i]
		v := d.Spec.Template.Labels["version"]
		if v == "" || !d.DeletionTimestamp.IsZero() {
			continue
		}
		seen[v] = true
		b, ok := m.backends[v]
		if !ok {
			var err error
			if b, err = localmesh.StartBackend(demoNamespace, demoApp, v, telemetry); err != nil {
				return err
			}
			m.backends[v] = b
			if err := b.Register(ctx, c, demoApp, demoPortName); err != nil {
				return err
			}
		}
		if d.Status.ObservedGeneration != d.Generation || d.Status.AvailableReplicas != ptr.Deref(d.Spec.Replicas, 1) {
			if err := localmesh.MarkAvailable(ctx, c, d); err != nil {
				return err
			}
		}
		rate := 0.0
		if f, err := strconv.ParseFloat(d.Annotations[DemoErrorRateAnnotation], 64); err == nil && f >= 0 && f <= 1 {
			rate = f
		}
		b.SetErrorRate(rate)
	}
	for v, b := range m.backends {
		if seen[v] {
			continue
		}
		b.Stop()
		delete(m.backends, v)
		we := &networkingv1.WorkloadEntry{ObjectMeta: metav1.ObjectMeta{Namespace: demoNamespace, Name: demoApp + "-" + v}}
		if err := c.Delete(ctx, we); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

func (m *demoMesh) stop() error {
	if m.generator != nil {
		m.generator.Stop()
	}
	if m.client != nil {
		_ = m.client.Close()
	}
	m.mu.Lock()
	for _, b := range m.backends {
		b.Stop()
	}
	m.mu.Unlock()
	if m.istiod != nil {
		return m.istiod.Stop()
	}
	return nil
}

// startDevPrometheus runs a real Prometheus scraping the demo's telemetry
// every second, its data in a directory removed when it stops.
func startDevPrometheus(telemetry *localmesh.Telemetry) (*localmesh.Prometheus, func() error, error) {
	dir, err := os.MkdirTemp("", "kubist-dev-prometheus-")
	if err != nil {
		return nil, nil, err
	}
	prom, err := localmesh.StartPrometheus(dir, time.Second, telemetry.Address)
	if err != nil {
		return nil, nil, errors.Join(err, os.RemoveAll(dir))
	}
	return prom, func() error { prom.Stop(); return os.RemoveAll(dir) }, nil
}

func printMeshHelp(out io.Writer, istio *localmesh.Istio, m *demoMesh, prometheusURL string) {
	fmt.Fprintf(out, "  Istio %s: istiod serves xDS at %s (log %s)\n", istio.Version, m.istiod.XDSAddress, relativeToWD(m.istiod.LogPath))
	fmt.Fprintf(out, "  Prometheus at %s, scraping the demo's Istio metrics every second\n", prometheusURL)
	fmt.Fprintf(out, "  A client sends %d requests a second to %s through istiod;\n", demoRate, demoTarget)
	fmt.Fprintf(out, "  make v2 fail half of them with:\n    kubectl annotate deployment reviews-v2 -n %s %s=0.5\n\n", demoNamespace, DemoErrorRateAnnotation)
}

// devDir is where kubist dev keeps what it writes beside the kubeconfig.
func devDir(kubeconfig string) string { return filepath.Dir(kubeconfig) }
