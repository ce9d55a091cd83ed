package main

import (
	goflag "flag"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// logOptions are the --zap-* flags; kubist dev reads them to send its log
// to a file.
var logOptions = zap.Options{Development: true}

// newLogger is the process's logger: zap with the --zap-* options.
func newLogger(opts *zap.Options) logr.Logger {
	return zap.New(zap.UseFlagOptions(opts))
}

func newRootCommand() *cobra.Command {
	zapOpts := &logOptions
	root := &cobra.Command{
		Use:   "kubist",
		Short: "Progressive delivery for Kubernetes and Istio: executors, policies, canaries",
		Long: "Kubist manages Projects, Clusters, VirtualClusters, Applications, Destinations,\n" +
			"Routes, CanaryReleases and Experiments through executors and Rego policies.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(*cobra.Command, []string) {
			ctrl.SetLogger(newLogger(zapOpts))
		},
	}
	logFlags := goflag.NewFlagSet("log", goflag.ContinueOnError)
	zapOpts.BindFlags(logFlags)
	root.PersistentFlags().AddGoFlagSet(logFlags)

	root.AddCommand(commands()...)
	return root
}
