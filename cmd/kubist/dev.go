//go:build !manager_only

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/config"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
	"github.com/kubist-io/kubist/internal/localenv/localmesh"
	"github.com/kubist-io/kubist/internal/manager/app"
	"github.com/kubist-io/kubist/internal/scheme"
)

// devFieldOwner is the server-side apply field manager of the samples.
const devFieldOwner = "kubist-dev"

// devReadyLine is printed once the control plane runs and the samples are
// applied; scripts and tests wait for it.
const devReadyLine = "Kubist is running on a local control plane."

type devOptions struct {
	assets        string
	istioDir      string
	kubeconfigOut string
	samples       bool
	tree          bool
	manager       managerOptions
}

func newDevCommand() *cobra.Command {
	opts := devOptions{
		kubeconfigOut: filepath.Join("bin", "dev", "kubeconfig"),
		samples:       true,
		tree:          true,
		manager:       defaultManagerOptions(),
	}
	opts.manager.MetricsAddr = "127.0.0.1:8080"
	opts.manager.ProbeAddr = "127.0.0.1:8081"
	// One local replica needs no election; --leader-elect turns it on, with
	// the Lease in kubist-system.
	opts.manager.LeaderElect = false
	opts.manager.LeaderElectionNamespace = "kubist-system"

	var logFile *os.File
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run Kubist on a local control plane it starts itself",
		Long: "Start etcd and kube-apiserver from bin/k8s/<version>/ (see `make envtest`),\n" +
			"install Kubist's CRDs, write a kubeconfig, run the manager against it and a\n" +
			"real Prometheus, and apply the samples: the sample Cluster's executor installs\n" +
			"Istio's charts from bin/istio/<version>/charts, istiod (bin/istio/<version>/\n" +
			"pilot-discovery) runs as their Deployment's pod, and a client calls the sample\n" +
			"Route through istiod's xDS while two gRPC backends stand in for its pods.\n" +
			"Ctrl-C stops everything.",
		Args: cobra.NoArgs,
		// The log goes to a file from the start (in place of the root
		// command's, to stderr): the terminal shows the stages and the tree.
		PersistentPreRunE: func(*cobra.Command, []string) error {
			f, err := devLog(devDir(opts.kubeconfigOut))
			logFile = f
			return err
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			defer logFile.Close()
			return runDev(cmd.Context(), cmd.OutOrStdout(), logFile.Name(), opts)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&opts.assets, "assets", "", "Directory with etcd, kube-apiserver and kubectl; defaults to $KUBEBUILDER_ASSETS or the newest bin/k8s/<version>/.")
	fs.StringVar(&opts.istioDir, "istio", "", "Directory with pilot-discovery and Istio's charts (see `make istio`); defaults to $KUBIST_ISTIO_DIR or the newest bin/istio/<version>/.")
	fs.StringVar(&opts.kubeconfigOut, "kubeconfig-out", opts.kubeconfigOut, "Where to write the kubeconfig of the local control plane.")
	fs.BoolVar(&opts.samples, "samples", opts.samples, "Apply the sample tree (config/samples) once the manager runs.")
	fs.BoolVar(&opts.tree, "tree", opts.tree, "Show the Kubist tree (as `kubist tree --watch`) once the samples are applied, redrawn as it changes.")
	opts.manager.addFlags(fs)
	addLogFlags(fs)
	return cmd
}

func runDev(ctx context.Context, out io.Writer, logPath string, opts devOptions) (err error) {
	if opts.manager.certSecret != "" || opts.manager.certService != "" || opts.manager.webhookConfiguration != "" || len(opts.manager.certIPs) > 0 {
		return errors.New("kubist dev registers the webhooks and keeps their certificate itself: drop --webhook-cert-secret, --webhook-service, --webhook-cert-ips and --webhook-configuration (they are for kubist manager)")
	}
	istio, err := localmesh.FindIstio(opts.istioDir)
	if err != nil {
		return err
	}
	dir := devDir(opts.kubeconfigOut)
	fmt.Fprintf(out, "Logs: %s (Kubist), %s, %s, %s\n", relativeToWD(logPath),
		relativeToWD(filepath.Join(dir, "kube-apiserver.log")), relativeToWD(filepath.Join(dir, "etcd.log")), relativeToWD(filepath.Join(dir, "istiod.log")))
	stageCount := 3
	if opts.samples {
		stageCount = 5
	}
	stage := newStages(out, stageCount)

	stage.begin("Starting etcd and kube-apiserver")
	// Istio's CRDs come with its base chart, which the sample Cluster's
	// executor installs. However kubist dev ends, even killed outright,
	// the control plane ends with it.
	cp, err := controlplane.Start(controlplane.Options{AssetsDir: opts.assets, LogDir: dir, DieWithParent: true,
		Webhooks: opts.manager.Webhooks, WithoutIstioCRDs: true})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "Stopping kube-apiserver and etcd")
		err = errors.Join(err, cp.Stop())
	}()
	stage.end("Kubernetes at " + cp.Config.Host)

	if opts.manager.PrometheusURL == "" {
		stage.begin("Starting Prometheus")
	} else {
		stage.begin("Using the Prometheus of --prometheus-url")
	}
	// What the sidecars of the demo's pods would report, scraped by a real
	// Prometheus that the canaries read.
	telemetry, err := localmesh.NewTelemetry()
	if err != nil {
		return err
	}
	defer telemetry.Close()
	prometheusURL := opts.manager.PrometheusURL
	if prometheusURL == "" {
		prom, stopProm, err := startDevPrometheus(telemetry)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stopProm()) }()
		prometheusURL = prom.URL
		opts.manager.PrometheusURL = prom.URL
	}
	charts, err := localmesh.ServeCharts(dir, istio.ChartDirs())
	if err != nil {
		return err
	}
	defer charts.Close()
	stage.end(prometheusURL)

	stage.begin("Starting the Kubist manager")
	if err := cp.WriteKubeconfig(opts.kubeconfigOut); err != nil {
		return fmt.Errorf("write kubeconfig: %w", err)
	}
	c, err := client.New(cp.Config, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	if ns := opts.manager.LeaderElectionNamespace; opts.manager.LeaderElect && ns != "" {
		if err := ensureNamespace(ctx, c, ns); err != nil {
			return err
		}
	}

	if opts.manager.Webhooks {
		// The control plane registered the webhooks without a CA: serve
		// them where it expects, with a certificate the manager issues
		// and rotates as `kubist manager --webhook-cert-secret` does.
		opts.manager.WebhookHost, opts.manager.WebhookPort, opts.manager.WebhookCertDir = cp.WebhookServing()
		opts.manager.WebhookCerts = cp.WebhookCerts()
	}
	mgr, err := app.New(ctx, cp.Config, opts.manager.Options)
	if err != nil {
		return err
	}
	mgrCtx, stopManager := context.WithCancel(ctx)
	defer stopManager()
	managerDone := mgr.StartInBackground(mgrCtx)

	if opts.manager.Webhooks {
		// Admission is only as good as the server behind it: wait for it.
		waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
		err := mgr.WaitForWebhooks(waitCtx)
		cancel()
		if err != nil {
			stopManager()
			return errors.Join(err, <-managerDone)
		}
	}
	stage.end("webhooks serving")
	var mesh *demoMesh
	if opts.samples {
		stage.begin("Applying the samples (config/samples)")
		if err := applySamples(ctx, c, out, charts.URL); err != nil {
			stopManager()
			return errors.Join(err, <-managerDone)
		}
		stage.end("")
		stage.begin(fmt.Sprintf("Installing Istio %s's charts through the sample Cluster, then istiod and the demo traffic", istio.Version))
		mesh, err = startDemoMesh(ctx, ctrl.Log.WithName("dev"), istio, c, cp.Kubeconfig, telemetry, dir)
		if err != nil {
			stopManager()
			return errors.Join(err, <-managerDone)
		}
		defer func() { err = errors.Join(err, mesh.stop()) }()
		stage.end("istiod serves xDS at " + mesh.istiod.XDSAddress)
	}
	stage.done()
	printDevHelp(out, cp, opts.kubeconfigOut)
	if mesh != nil {
		printMeshHelp(out, istio, mesh, prometheusURL)
	}
	fmt.Fprintln(out, "Press Ctrl-C to stop; etcd, kube-apiserver, istiod and Prometheus stop with it.")
	if opts.tree {
		go func() { _ = watchTree(mgrCtx, c, out, time.Second, isTerminal(out)) }()
	}
	if mesh != nil {
		go applyNextVersion(mgrCtx, ctrl.Log.WithName("dev"), c)
	}

	select {
	case <-ctx.Done():
		fmt.Fprintln(out, "\nStopping")
		stopManager()
		return <-managerDone
	case err := <-managerDone:
		if err == nil {
			err = errors.New("manager stopped unexpectedly")
		}
		return err
	}
}

// devLog sends the log of kubist dev (the manager's included) and of the
// Kubernetes client libraries to dir/kubist.log, so that the terminal
// shows the stages and the tree.
func devLog(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(filepath.Join(dir, "kubist.log"))
	if err != nil {
		return nil, err
	}
	opts := logOptions
	opts.DestWriter = f
	logger := newLogger(&opts)
	ctrl.SetLogger(logger)
	klog.SetLogger(logger)
	return f, nil
}

// stages prints what kubist dev is doing, one stage at a time, and how
// long each took: a first run installs charts and starts processes that
// take a while.
type stages struct {
	out     io.Writer
	n, of   int
	started time.Time
	all     time.Time
}

func newStages(out io.Writer, of int) *stages {
	return &stages{out: out, of: of, all: time.Now()}
}

func (s *stages) begin(what string) {
	s.n++
	s.started = time.Now()
	fmt.Fprintf(s.out, "[%d/%d] %s ...\n", s.n, s.of, what)
}

func (s *stages) end(detail string) {
	took := time.Since(s.started).Round(100 * time.Millisecond)
	if detail != "" {
		detail = ": " + detail
	}
	fmt.Fprintf(s.out, "      done in %s%s\n", took, detail)
}

func (s *stages) done() {
	fmt.Fprintf(s.out, "Ready in %s.\n", time.Since(s.all).Round(100*time.Millisecond))
}

func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// applySamples server-side applies the embedded sample tree in order, the
// Cluster's executor installing Istio's charts from chartRepository.
func applySamples(ctx context.Context, c client.Client, out io.Writer, chartRepository string) error {
	samples, err := config.Samples()
	if err != nil {
		return fmt.Errorf("read samples: %w", err)
	}
	for _, s := range samples {
		if s.GetKind() == "Cluster" {
			if err := unstructured.SetNestedField(s.Object, chartRepository, "spec", "executor", "parameters", "chartRepository"); err != nil {
				return fmt.Errorf("sample %s: %w", s.Source, err)
			}
		}
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(s.Unstructured),
			client.FieldOwner(devFieldOwner), client.ForceOwnership)
		if err != nil {
			return fmt.Errorf("apply sample %s %s/%s: %w", s.Source, s.GetKind(), s.GetName(), err)
		}
		fmt.Fprintf(out, "applied %s/%s\n", strings.ToLower(s.GetKind()), s.GetName())
	}
	return nil
}

// applyNextVersion waits for the sample canary to promote v2, then
// applies the next version's Deployment (config/demo): the Route's release
// template starts its release by itself.
func applyNextVersion(ctx context.Context, log logr.Logger, c client.Client) {
	for ctx.Err() == nil {
		var cr v1alpha1.CanaryRelease
		err := c.Get(ctx, client.ObjectKey{Namespace: demoNamespace, Name: "reviews-v2"}, &cr)
		if err == nil && cr.Status.Phase == v1alpha1.CanaryPromoted {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	objects, err := config.NextVersion()
	if err != nil {
		log.Error(err, "Read the next version")
		return
	}
	for _, o := range objects {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.Unstructured), client.FieldOwner(devFieldOwner), client.ForceOwnership); err != nil && ctx.Err() == nil {
			log.Error(err, "Apply the next version", "kind", o.GetKind(), "name", o.GetName())
			return
		}
		log.Info("The sample canary promoted v2: applied the next version; the Route's release template starts its release", "kind", o.GetKind(), "name", o.GetName())
	}
}

func printDevHelp(out io.Writer, cp *controlplane.ControlPlane, kubeconfig string) {
	serverVersion := "unknown"
	if dc, err := discovery.NewDiscoveryClientForConfig(rest.CopyConfig(cp.Config)); err == nil {
		if v, err := dc.ServerVersion(); err == nil {
			serverVersion = v.GitVersion
		}
	}
	kubectl := relativeToWD(cp.Kubectl())
	fmt.Fprintf(out, "\n%s\n  Kubernetes %s at %s\n\n", devReadyLine, serverVersion, cp.Config.Host)
	fmt.Fprintf(out, "Talk to it with:\n  export KUBECONFIG=%s\n", relativeToWD(kubeconfig))
	fmt.Fprintf(out, "  %s get projects,clusters,virtualclusters\n", kubectl)
	fmt.Fprintf(out, "  %s get kubist -A\n\n", kubectl)
	fmt.Fprintf(out, "  %s tree --watch\n", relativeToWD(os.Args[0]))
	fmt.Fprintf(out, "  %s dashboard      (the tree and the releases in the browser)\n\n", relativeToWD(os.Args[0]))
}

// relativeToWD shortens path to one relative to the working directory when
// it lies beneath it.
func relativeToWD(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || strings.HasPrefix(rel, "..") {
		return abs
	}
	return rel
}
