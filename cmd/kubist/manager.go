package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubist-io/kubist/internal/kubeconfig"
	"github.com/kubist-io/kubist/internal/manager/app"
	"github.com/kubist-io/kubist/internal/manager/certs"
)

// managerOptions are the flags of `kubist manager`, shared by `kubist dev`.
type managerOptions struct {
	kubeconfig string
	app.Options
	// Self-managed webhook certificate (see package certs): on when
	// certSecret is set.
	certSecret, certService, webhookConfiguration string
	certIPs                                       []net.IP
}

func defaultManagerOptions() managerOptions {
	opts := managerOptions{Options: app.Defaults()}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		opts.Namespace = ns
	}
	return opts
}

func (o *managerOptions) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.BoolVar(&o.MetricsSecure, "metrics-secure", o.MetricsSecure, "Serve metrics over HTTPS, to clients the API server authenticates and authorizes for GET /metrics.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", o.PprofAddr, "Address Go's profiles (/debug/pprof) bind to; empty disables them.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "Address the /healthz and /readyz probes bind to.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", o.LeaderElect, "Elect a leader among replicas so that only one reconciles; every replica serves admission.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", o.LeaderElectionNamespace, "Namespace of the leader-election Lease; defaults to the pod's namespace in a cluster.")
	fs.DurationVar(&o.PolicyLimits.Timeout, "policy-timeout", o.PolicyLimits.Timeout, "Deadline of one policy evaluation.")
	fs.IntVar(&o.PolicyLimits.MaxDecisionBytes, "policy-max-decision-bytes", o.PolicyLimits.MaxDecisionBytes, "Largest policy decision accepted, in bytes of JSON.")
	fs.BoolVar(&o.Webhooks, "webhooks", o.Webhooks, "Serve the admission webhooks.")
	fs.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "Port of the admission webhook server (HTTPS).")
	fs.DurationVar(&o.ClusterCheckTimeout, "cluster-check-timeout", o.ClusterCheckTimeout, "How long admission waits for a Route's or a Destination's cluster to judge, as a dry run, the objects it would make there (Istio's own validation); past it the object is admitted with a warning. 0 turns the check off.")
	fs.StringVar(&o.WebhookCertDir, "webhook-cert-dir", o.WebhookCertDir, "Directory with the webhook server's tls.crt and tls.key; defaults to controller-runtime's.")
	fs.StringVar(&o.certSecret, "webhook-cert-secret", o.certSecret, "Issue and rotate the webhook serving certificate in this Secret of --namespace, instead of reading one that cert-manager provides in --webhook-cert-dir.")
	fs.StringVar(&o.certService, "webhook-service", o.certService, "Name of the webhook Service in --namespace; the self-managed certificate is issued for its DNS names.")
	fs.IPSliceVar(&o.certIPs, "webhook-cert-ips", o.certIPs, "IP addresses the self-managed certificate is issued for too, for webhook configurations that call a URL by address rather than the Service.")
	fs.StringVar(&o.webhookConfiguration, "webhook-configuration", o.webhookConfiguration, "Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle the self-managed certificate's CA is written into.")
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "The manager's namespace (default $POD_NAMESPACE or kubist-system): kubeconfig Secrets of workload clusters are read only there.")
	fs.DurationVar(&o.ResyncPeriod, "resync-period", o.ResyncPeriod, "Period of the root run that triggers every Project and, through each executor, the whole tree.")
	fs.StringVar(&o.PrometheusURL, "prometheus-url", o.PrometheusURL, "Prometheus the canary and experiment policies read metrics from, e.g. http://prometheus.istio-system:9090; without it metric-based policies hold.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Concurrent executor runs per kind.")
	fs.StringVar(&o.Shard, "shard", o.Shard, "Reconcile only the Projects labelled kubist.io/shard=NAME and everything below them (\"default\": the Projects without the label too), with a leader-election Lease of the shard's own; empty: every Project.")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Requests per second the manager may make to each Kubernetes API server.")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of requests above --kube-api-qps.")
}

func newManagerCommand() *cobra.Command {
	opts := defaultManagerOptions()
	var memoryLimit string
	cmd := &cobra.Command{
		Use:   "manager",
		Short: "Run the Kubist controller manager",
		Long: "Run the controller manager: the executors of every Kubist kind, the admission\n" +
			"webhooks, health and readiness probes and Prometheus metrics.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.selfManagedCerts(); err != nil {
				return err
			}
			if err := applyMemoryLimit(memoryLimit); err != nil {
				return err
			}
			cfg, err := kubeconfig.Load(opts.kubeconfig)
			if err != nil {
				return err
			}
			mgr, err := app.New(cmd.Context(), cfg, opts.Options)
			if err != nil {
				return err
			}
			return mgr.Start(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&opts.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; defaults to $KUBECONFIG or the in-cluster configuration.")
	cmd.Flags().StringVar(&memoryLimit, "memory-limit", "", "The container's memory limit, e.g. 384Mi: unless GOMEMLIMIT is set, Go's soft memory limit is set 128Mi below it (at least half of it), the room the executable's own pages take.")
	opts.addFlags(cmd.Flags())
	addLogFlags(cmd.Flags())
	return cmd
}

// binaryHeadroom is what the soft memory limit leaves of the container's
// limit for what the Go runtime does not count: the executable's pages,
// resident and charged to the container (about 100 MiB, docs/scale.md).
const binaryHeadroom = 128 << 20

// softMemoryLimit is Go's soft memory limit for a container's memory
// limit: binaryHeadroom below it, and at least half of it.
func softMemoryLimit(container int64) int64 {
	return max(container-binaryHeadroom, container/2)
}

// applyMemoryLimit sets Go's soft memory limit from --memory-limit, unless
// GOMEMLIMIT sets one.
func applyMemoryLimit(limit string) error {
	if limit == "" || os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	q, err := resource.ParseQuantity(limit)
	if err != nil || q.Value() <= 0 {
		return fmt.Errorf("--memory-limit %q: give the container's memory limit as a positive quantity, e.g. 384Mi", limit)
	}
	debug.SetMemoryLimit(softMemoryLimit(q.Value()))
	return nil
}

// selfManagedCerts turns --webhook-cert-secret and its companions into the
// manager's certificate options.
func (o *managerOptions) selfManagedCerts() error {
	if o.certSecret == "" {
		if o.certService != "" || o.webhookConfiguration != "" || len(o.certIPs) > 0 {
			return errors.New("--webhook-service, --webhook-cert-ips and --webhook-configuration apply to a self-managed certificate: set --webhook-cert-secret too")
		}
		return nil
	}
	if (o.certService == "" && len(o.certIPs) == 0) || o.webhookConfiguration == "" {
		return errors.New("--webhook-cert-secret needs --webhook-service or --webhook-cert-ips (what to issue the certificate for) and --webhook-configuration (where to put its CA)")
	}
	o.WebhookCerts = &certs.Options{
		Namespace:            o.Namespace,
		SecretName:           o.certSecret,
		IPs:                  o.certIPs,
		WebhookConfiguration: o.webhookConfiguration,
	}
	if o.certService != "" {
		o.WebhookCerts.DNSNames = certs.ServiceDNSNames(o.certService, o.Namespace)
	}
	return nil
}
