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
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/internal/localenv/localmesh"
)

// DemoErrorRateAnnotation on a demo Deployment (reviews-v1, reviews-v2)
// makes its backend fail that share of its requests, from 0 to 1.
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

var demoVersions = []string{"v1", "v2"}

// demoMesh is what stands in for the sample's pods and their sidecars:
// istiod as its Deployment's pod, one gRPC backend per version registered
// with Istio, the telemetry their sidecars would export, and a client
// calling the sample Route through istiod's xDS.
type demoMesh struct {
	istiod    *localmesh.Istiod
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
	for _, v := range demoVersions {
		b, err := localmesh.StartBackend(demoNamespace, demoApp, v, telemetry)
		if err != nil {
			return m, err
		}
		m.backends[v] = b
		if err := b.Register(ctx, c, demoApp, demoPortName); err != nil {
			return m, err
		}
		// The backend stands in for the Deployment's pods.
		d := &appsv1.Deployment{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: demoNamespace, Name: demoApp + "-" + v}, d); err == nil {
			if err := localmesh.MarkAvailable(ctx, c, d); err != nil {
				return m, err
			}
		}
	}
	if m.client, err = localmesh.DialXDS(m.istiod.XDSAddress, demoNamespace, demoTarget); err != nil {
		return m, err
	}
	if m.generator, err = localmesh.StartGenerator(m.client, demoRate, 2, nil); err != nil {
		return m, err
	}
	// The backends' telemetry is what Prometheus and Kubist read.
	m.generator.Discard()
	go m.followErrorRates(ctx, c)
	return m, nil
}

// followErrorRates applies each demo Deployment's DemoErrorRateAnnotation
// to its backend, every second.
func (m *demoMesh) followErrorRates(ctx context.Context, c client.Client) {
	for ctx.Err() == nil {
		for v, b := range m.backends {
			d := &appsv1.Deployment{}
			rate := 0.0
			if c.Get(ctx, types.NamespacedName{Namespace: demoNamespace, Name: demoApp + "-" + v}, d) == nil {
				if f, err := strconv.ParseFloat(d.Annotations[DemoErrorRateAnnotation], 64); err == nil && f >= 0 && f <= 1 {
					rate = f
				}
			}
			b.SetErrorRate(rate)
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

func (m *demoMesh) stop() error {
	if m.generator != nil {
		m.generator.Stop()
	}
	if m.client != nil {
		_ = m.client.Close()
	}
	for _, b := range m.backends {
		b.Stop()
	}
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
