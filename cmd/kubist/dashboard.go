//go:build !manager_only

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/kubist-io/kubist/internal/cli/dashboard"
)

func newDashboardCommand() *cobra.Command {
	var address string
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Serve the Kubist tree and its releases in the browser, live, with the release actions as buttons",
		Long: "Serve one page, on a loopback address unless --address says otherwise, that\n" +
			"shows the Kubist tree, each ReleasePlan (its waves as lanes), and each\n" +
			"CanaryRelease and Experiment: its weights over\n" +
			"time, the metrics each decision saw, gates waiting and its last events, updated\n" +
			"from watches as they change. Its buttons ask for the actions of `kubist canary`\n" +
			"and `kubist experiment` with the kubeconfig's credentials (and --as), so RBAC\n" +
			"decides exactly as for the CLI. -n limits it to one namespace. Nothing is stored.",
		Args: cobra.NoArgs,
	}
	flags := clientFlags(cmd)
	var managerNamespace string
	cmd.Flags().StringVar(&managerNamespace, "manager-namespace", dashboard.DefaultManagerNamespace, "The Kubist manager's namespace, where the actions of a ReleasePlan are created.")
	cmd.Flags().StringVar(&address, "address", "127.0.0.1:3100", "Address to serve the page on. Anyone who can reach it acts with your credentials: keep it on loopback.")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := flags.ToRESTConfig()
		if err != nil {
			return err
		}
		namespace := ""
		if flags.Namespace != nil && *flags.Namespace != "" {
			namespace = *flags.Namespace
		}
		server, err := dashboard.New(cfg, namespace)
		if err != nil {
			return err
		}
		server.SetManagerNamespace(managerNamespace)
		listener, err := net.Listen("tcp", address)
		if err != nil {
			return fmt.Errorf("--address %s: %w", address, err)
		}
		ctx, cancel := context.WithCancel(cmd.Context())
		defer cancel()
		server.Start(ctx)
		srv := &http.Server{Handler: server.Handler(listener.Addr().String()), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			_ = srv.Shutdown(shutdown)
		}()
		if host, _, _ := net.SplitHostPort(listener.Addr().String()); !net.ParseIP(host).IsLoopback() {
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s is not a loopback address: whoever reaches it acts on the cluster with your credentials\n", address)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "Kubist dashboard: http://%s/ (Ctrl-C to stop)\n", listener.Addr())
		if err := srv.Serve(listener); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return cmd
}
