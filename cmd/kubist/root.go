package main

import (
	goflag "flag"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// logOptions are the --zap-* flags of kubist manager and kubist dev; kubist
// dev reads them to send its log to a file.
var logOptions = zap.Options{Development: true}

// newLogger is the process's logger: zap with the --zap-* options.
func newLogger(opts *zap.Options) logr.Logger {
	return zap.New(zap.UseFlagOptions(opts))
}

// addLogFlags adds the --zap-* flags to the commands that log: the
// manager's (kubist manager, kubist dev).
func addLogFlags(fs *pflag.FlagSet) {
	logFlags := goflag.NewFlagSet("log", goflag.ContinueOnError)
	logOptions.BindFlags(logFlags)
	fs.AddGoFlagSet(logFlags)
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "kubist",
		Short: "Progressive delivery for Kubernetes and Istio: executors, policies, canaries",
		Long: "Kubist manages Projects, Clusters, VirtualClusters, Applications, Destinations,\n" +
			"Routes, CanaryReleases and Experiments through executors and Rego policies.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if cmd.Flags().Lookup("zap-log-level") != nil {
				ctrl.SetLogger(newLogger(&logOptions))
				return
			}
			// The commands people run as they run kubectl: what goes wrong
			// is in the error they return, one line; the API server's
			// warnings are printed as kubectl prints them.
			ctrl.SetLogger(logr.Discard())
			klog.SetLogger(logr.Discard())
			rest.SetDefaultWarningHandler(rest.NewWarningWriter(os.Stderr, rest.WarningWriterOptions{Deduplicate: true}))
		},
	}
	root.AddCommand(commands()...)
	return root
}
