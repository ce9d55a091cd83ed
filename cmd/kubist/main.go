// Command kubist is Kubist's one binary: the controller manager, a local
// development control plane, the tools users run offline, and the commands
// that act on releases. Named kubectl-kubist (a link will do), it is a
// kubectl plugin: `kubectl kubist canary promote NAME`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kubist-io/kubist/internal/controlplane"
)

func main() {
	// kubist dev starts etcd and kube-apiserver through this executable so
	// that they die with it (controlplane.Options.DieWithParent).
	if err := controlplane.ExecWrapped(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	// SIGHUP too: a closed terminal ends kubist dev as Ctrl-C does, with
	// everything it started.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	root := newRootCommand()
	if strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-kubist") {
		// Run as a kubectl plugin: `kubectl kubist canary promote web`.
		root.Annotations = map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl kubist"}
	}
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "Error:", err)
		}
		os.Exit(1)
	}
}
