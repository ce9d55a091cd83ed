// Package app builds Kubist's controller manager — policy engine,
// executors, admission webhooks, probes — the one way `kubist manager`,
// `kubist dev` and the tests run it.
package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/internal/manager/certs"
	"github.com/kubist-io/kubist/internal/manager/notify"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/policies"
	"github.com/kubist-io/kubist/reconciler"
	"github.com/kubist-io/kubist/webhook"
)

// The manager's own needs: a Lease for leader election in its namespace,
// Events to report it.
// Executors declare what they read and write beside their code.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete,namespace=kubist-system
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// With --metrics-secure, who may read /metrics is asked of the API server.
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// LeaderElectionID names the Lease that manager replicas compete for.
const LeaderElectionID = "kubist-manager.kubist.io"

// LeaseName is the leader-election Lease of a shard's replicas: each shard
// elects its own leader.
func LeaseName(shard string) string {
	if shard == "" {
		return LeaderElectionID
	}
	return "kubist-manager-" + shard + ".kubist.io"
}

// Options configure the manager.
type Options struct {
	MetricsAddr string
	// MetricsSecure serves metrics over HTTPS to clients the API server
	// authenticates and authorizes for GET /metrics.
	MetricsSecure bool
	// PprofAddr serves Go's profiles (net/http/pprof) when set.
	PprofAddr               string
	ProbeAddr               string
	LeaderElect             bool
	LeaderElectionNamespace string
	PolicyLimits            policies.Limits
	Webhooks                bool
	WebhookHost             string
	WebhookPort             int
	WebhookCertDir          string
	// ClusterCheckTimeout bounds admission's dry run of what a Route or a
	// Destination would make on its cluster; 0 turns it off.
	ClusterCheckTimeout time.Duration
	// WebhookCerts, when set, has the manager issue and rotate its own
	// serving certificate (see package certs) into WebhookCertDir instead of
	// reading one that cert-manager provides there; its CertDir is ignored.
	WebhookCerts *certs.Options
	// Namespace is the manager's: kubeconfig Secrets are read there only.
	Namespace    string
	ResyncPeriod time.Duration
	// Shard limits the manager to one shard's Projects (label
	// kubist.io/shard; "default" for those without it), with a Lease of
	// its own; empty runs every Project.
	Shard string
	// PrometheusURL is where canary and experiment metrics are read; empty
	// runs without metrics (metric-based policies then hold).
	PrometheusURL string
	Workers       int
	// QPS and Burst bound the manager's requests to each API server.
	QPS   float32
	Burst int
	// ImportGrace is how long a Deployment exists before its VirtualCluster
	// imports it as an Application.
	ImportGrace time.Duration
	// WrapClient wraps the executors' client (tests count writes with it).
	WrapClient func(client.Client) client.Client
	// Notifications tune the delivery of release notifications.
	Notifications notify.Options
}

// Defaults are the options of `kubist manager` without flags.
func Defaults() Options {
	return Options{
		MetricsAddr:         ":8080",
		ProbeAddr:           ":8081",
		LeaderElect:         true,
		PolicyLimits:        policies.DefaultLimits,
		Webhooks:            true,
		WebhookPort:         9443,
		ClusterCheckTimeout: webhook.DefaultTargetTimeout,
		Namespace:           "kubist-system",
		ResyncPeriod:        reconciler.DefaultResyncPeriod,
		Workers:             4,
		QPS:                 50,
		Burst:               100,
		ImportGrace:         reconciler.DefaultImportGrace,
	}
}

// Manager is the controller manager with the parts tests look into.
type Manager struct {
	manager.Manager
	Engine     catalog.Engine
	Reconciler *reconciler.Reconciler
}

// New builds the controller manager with its probes, the policy engine,
// every controller and, when enabled, the webhooks.
func New(ctx context.Context, cfg *rest.Config, opts Options) (*Manager, error) {
	if opts.Shard != "" {
		if errs := validation.IsDNS1123Label(opts.Shard); len(errs) > 0 {
			return nil, fmt.Errorf("--shard %q: %s (it names the shard's Lease and is the value of the Projects' kubist.io/shard label)", opts.Shard, strings.Join(errs, "; "))
		}
	}
	cfg = rest.CopyConfig(cfg)
	if opts.QPS > 0 {
		cfg.QPS, cfg.Burst = opts.QPS, opts.Burst
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme.New(),
		Cache:  reconciler.CacheOptions(opts.Namespace),
		Client: client.Options{Cache: &client.CacheOptions{DisableFor: reconciler.UncachedObjects()}},
		// Controller names are unique per manager; tests run several
		// managers in one process.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: opts.WebhookHost, Port: opts.WebhookPort, CertDir: opts.WebhookCertDir,
		}),
		Metrics:                       metricsOptions(opts),
		HealthProbeBindAddress:        opts.ProbeAddr,
		PprofBindAddress:              opts.PprofAddr,
		LeaderElection:                opts.LeaderElect,
		LeaderElectionID:              LeaseName(opts.Shard),
		LeaderElectionNamespace:       opts.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
		return nil, fmt.Errorf("add readiness check: %w", err)
	}
	engine, err := catalog.NewEngine(ctx, opts.PolicyLimits)
	if err != nil {
		return nil, err
	}
	ropts := reconciler.Options{
		Namespace: opts.Namespace, ResyncPeriod: opts.ResyncPeriod, Workers: opts.Workers, WrapClient: opts.WrapClient,
		ImportGrace: opts.ImportGrace, Notifications: opts.Notifications, Shard: opts.Shard,
	}
	if opts.PrometheusURL != "" {
		if ropts.Metrics, err = policies.NewPrometheus(opts.PrometheusURL, nil); err != nil {
			return nil, err
		}
	}
	rc, err := reconciler.Setup(mgr, engine, ropts)
	if err != nil {
		return nil, err
	}
	if opts.Webhooks {
		if err := selfManagedCerts(ctx, mgr, cfg, &opts); err != nil {
			return nil, err
		}
		admission := &webhook.Admission{Registry: engine.Registry, Compiler: engine.Compiler, Executors: engine.Executors, Reader: mgr.GetClient(), Namespace: opts.Namespace}
		if opts.ClusterCheckTimeout > 0 {
			admission.Target, admission.TargetTimeout = rc, opts.ClusterCheckTimeout
		}
		if err := webhook.Setup(mgr, admission); err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
			return nil, fmt.Errorf("add readiness check: %w", err)
		}
	}
	return &Manager{Manager: mgr, Engine: engine, Reconciler: rc}, nil
}

// metricsOptions serve metrics in the clear, or over HTTPS (a self-signed
// certificate) behind the API server's authentication and authorization.
func metricsOptions(opts Options) metricsserver.Options {
	o := metricsserver.Options{BindAddress: opts.MetricsAddr}
	if opts.MetricsSecure {
		o.SecureServing = true
		o.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return o
}

// selfManagedCerts issues (or reads back) the serving certificate before
// the webhook server starts, which loads it at start, and keeps it renewed
// while the manager runs.
func selfManagedCerts(ctx context.Context, mgr manager.Manager, cfg *rest.Config, opts *Options) error {
	if opts.WebhookCerts == nil {
		return nil
	}
	copts := *opts.WebhookCerts
	copts.CertDir = opts.WebhookCertDir
	if copts.CertDir == "" {
		copts.CertDir = filepath.Join(os.TempDir(), "k8s-webhook-server", "serving-certs")
	}
	// The manager's cache runs only once the manager starts: read and
	// write directly.
	direct, err := client.New(cfg, client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return err
	}
	rotator, err := certs.New(direct, mgr.GetLogger().WithName("webhook-certs"), copts)
	if err != nil {
		return err
	}
	if err := rotator.Ensure(ctx); err != nil {
		return err
	}
	return mgr.Add(rotator)
}

// StartInBackground runs the manager in the background; the channel yields its result.
func (m *Manager) StartInBackground(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	go func() { done <- m.Start(ctx) }()
	return done
}

// WaitForWebhooks waits until the webhook server serves, or ctx ends.
func (m *Manager) WaitForWebhooks(ctx context.Context) error {
	started := m.GetWebhookServer().StartedChecker()
	for started(nil) != nil {
		select {
		case <-ctx.Done():
			return fmt.Errorf("webhook server did not start: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}
