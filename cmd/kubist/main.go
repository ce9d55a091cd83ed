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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
