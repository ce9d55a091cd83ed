package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/policies"
	"github.com/kubist-io/kubist/reconciler"
	"github.com/kubist-io/kubist/webhook"
)

// The manager's own needs: a Lease for leader election, Events to report it.
// Executors declare what they read and write beside their code.
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch

// leaderElectionID names the Lease that manager replicas compete for.
const leaderElectionID = "kubist-manager.kubist.io"

// managerOptions are the flags of `kubist manager`, shared by `kubist dev`.
type managerOptions struct {
	kubeconfig              string
	metricsAddr             string
	probeAddr               string
	leaderElect             bool
	leaderElectionNamespace string
	policyLimits            policies.Limits
	webhooks                bool
	webhookHost             string
	webhookPort             int
	webhookCertDir          string
}

func defaultManagerOptions() managerOptions {
	return managerOptions{
		metricsAddr:  ":8080",
		probeAddr:    ":8081",
		leaderElect:  true,
		policyLimits: policies.DefaultLimits,
		webhooks:     true,
		webhookPort:  9443,
	}
}

func (o *managerOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.metricsAddr, "metrics-bind-address", o.metricsAddr, "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.probeAddr, "health-probe-bind-address", o.probeAddr, "Address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&o.leaderElect, "leader-elect", o.leaderElect, "Elect a leader among replicas so that only one reconciles; every replica serves admission.")
	fs.StringVar(&o.leaderElectionNamespace, "leader-election-namespace", o.leaderElectionNamespace, "Namespace of the leader-election Lease; defaults to the pod's namespace in a cluster.")
	fs.DurationVar(&o.policyLimits.Timeout, "policy-timeout", o.policyLimits.Timeout, "Deadline of one policy evaluation.")
	fs.IntVar(&o.policyLimits.MaxDecisionBytes, "policy-max-decision-bytes", o.policyLimits.MaxDecisionBytes, "Largest policy decision accepted, in bytes of JSON.")
	fs.BoolVar(&o.webhooks, "webhooks", o.webhooks, "Serve the admission webhooks.")
	fs.IntVar(&o.webhookPort, "webhook-port", o.webhookPort, "Port of the admission webhook server (HTTPS).")
	fs.StringVar(&o.webhookCertDir, "webhook-cert-dir", o.webhookCertDir, "Directory with the webhook server's tls.crt and tls.key; defaults to controller-runtime's.")
}

func newManagerCommand() *cobra.Command {
	opts := defaultManagerOptions()
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the Kubist controller manager",
		Long: "Run the controller manager: the executors of every Kubist kind, the admission\n" +
			"webhooks, health and readiness probes and Prometheus metrics.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := restConfig(opts.kubeconfig)
			if err != nil {
				return err
			}
			mgr, err := newManager(cmd.Context(), cfg, opts)
			if err != nil {
				return err
			}
			return mgr.Start(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&opts.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; defaults to $KUBECONFIG or the in-cluster configuration.")
	opts.addFlags(cmd.Flags())
	return cmd
}

// restConfig loads the client configuration from a kubeconfig path, or the
// standard places (KUBECONFIG, in-cluster, ~/.kube/config) when it is empty.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" {
		return ctrl.GetConfig()
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", kubeconfig, err)
	}
	return cfg, nil
}

// newManager builds the controller manager with its probes, the policy
// engine and every controller.
func newManager(ctx context.Context, cfg *rest.Config, opts managerOptions) (manager.Manager, error) {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: scheme.New(),
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: opts.webhookHost, Port: opts.webhookPort, CertDir: opts.webhookCertDir,
		}),
		Metrics:                       metricsserver.Options{BindAddress: opts.metricsAddr},
		HealthProbeBindAddress:        opts.probeAddr,
		LeaderElection:                opts.leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       opts.leaderElectionNamespace,
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
	compiler, err := policies.NewCompiler(opts.policyLimits)
	if err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	registry, err := policies.NewPredefinedRegistry(ctx, compiler)
	if err != nil {
		return nil, fmt.Errorf("policy engine: %w", err)
	}
	if err := reconciler.RegisterExecutors(registry); err != nil {
		return nil, fmt.Errorf("executors: %w", err)
	}
	if err := reconciler.Setup(mgr, reconciler.Engine{Compiler: compiler, Registry: registry}); err != nil {
		return nil, err
	}
	if opts.webhooks {
		if err := webhook.Setup(mgr, &webhook.Admission{Registry: registry, Compiler: compiler, Reader: mgr.GetClient()}); err != nil {
			return nil, fmt.Errorf("webhooks: %w", err)
		}
		if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
			return nil, fmt.Errorf("add readiness check: %w", err)
		}
	}
	return mgr, nil
}

// startManager starts mgr in the background; the channel yields its result.
func startManager(ctx context.Context, mgr manager.Manager) <-chan error {
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return done
}
