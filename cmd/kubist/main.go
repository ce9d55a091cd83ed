// Command kubist is Kubist's one binary: the controller manager, a local
// development control plane, the tools users run offline, and the commands
// that act on releases. Named kubectl-kubist (a link will do), it is a
// kubectl plugin: `kubectl kubist canary promote NAME`.
//
// Built with the tag manager_only, it is the manager alone, as the image
// the Helm chart runs holds it: none of the development control plane,
// the local mesh or the offline tools is linked in, so none of their code
// or package initialisation takes the manager's memory.
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
)

func main() {
	if err := startup(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
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
		// As kubectl prints it.
		if err.Error() != "" {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}
