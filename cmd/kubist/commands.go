//go:build !manager_only

package main

import (
	"github.com/spf13/cobra"

	"github.com/kubist-io/kubist/internal/cli/offline"
	"github.com/kubist-io/kubist/internal/localenv/controlplane"
)

// commands are the subcommands of the whole binary.
func commands() []*cobra.Command {
	return append([]*cobra.Command{
		newManagerCommand(),
		newDevCommand(),
		offline.NewPolicyCommand(),
		offline.NewExecutorCommand(),
		offline.NewValidateCommand(),
		newTreeCommand(),
		newCanaryCommand(),
		newExperimentCommand(),
		newPlanCommand(),
		newImageCommand(),
		newGetCommand(),
		newStartCommand(),
		newDashboardCommand(),
	}, newFreezeCommands()...)
}

// startup runs first in main: kubist dev starts etcd and kube-apiserver
// through this executable so that they die with it
// (controlplane.Options.DieWithParent).
func startup() error { return controlplane.ExecWrapped() }
