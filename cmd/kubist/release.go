//go:build !manager_only

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/release"
	"github.com/kubist-io/kubist/internal/scheme"
)

// clientFlags are kubectl's: --kubeconfig, --context, -n/--namespace, --as, …
func clientFlags(cmd *cobra.Command) *genericclioptions.ConfigFlags {
	flags := genericclioptions.NewConfigFlags(true)
	flags.AddFlags(cmd.PersistentFlags())
	return flags
}

// clientOf builds a client and the namespace from kubectl's flags.
func clientOf(flags *genericclioptions.ConfigFlags) (client.Client, string, error) {
	cfg, err := flags.ToRESTConfig()
	if err != nil {
		return nil, "", err
	}
	namespace, _, err := flags.ToRawKubeConfigLoader().Namespace()
	if err != nil {
		return nil, "", err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	return c, namespace, err
}

// actionVerb is one subcommand of `kubist canary` or `kubist experiment`.
type actionVerb struct {
	use, short string
	action     v1alpha1.ActionName
	// flags adds the verb's own flags and returns what fills the spec.
	flags func(cmd *cobra.Command) func(spec *v1alpha1.ReleaseActionSpec) error
}

func newReleaseCommand(kind, use, short string, verbs []actionVerb) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short}
	flags := clientFlags(cmd)
	var wait time.Duration
	cmd.PersistentFlags().DurationVar(&wait, "wait", 30*time.Second, "How long to wait for the release's executor to apply the action; 0 returns once it is asked.")
	var managerNamespace string
	if kind == "ReleasePlan" {
		cmd.PersistentFlags().StringVar(&managerNamespace, "manager-namespace", "kubist-system", "The Kubist manager's namespace, where a ReleasePlan's actions are created.")
	}
	for _, v := range verbs {
		sub := &cobra.Command{Use: v.use + " NAME", Short: v.short, Args: cobra.ExactArgs(1)}
		fill := func(*v1alpha1.ReleaseActionSpec) error { return nil }
		if v.flags != nil {
			fill = v.flags(sub)
		}
		sub.RunE = func(cmd *cobra.Command, args []string) error {
			c, namespace, err := clientOf(flags)
			if err != nil {
				return err
			}
			if managerNamespace != "" {
				namespace = managerNamespace
			}
			spec := v1alpha1.ReleaseActionSpec{Target: v1alpha1.ActionTarget{Kind: kind, Name: args[0]}, Action: v.action}
			if err := fill(&spec); err != nil {
				return err
			}
			return act(cmd.Context(), c, namespace, spec, wait, cmd.OutOrStdout())
		}
		cmd.AddCommand(sub)
	}
	return cmd
}

func newCanaryCommand() *cobra.Command {
	return newReleaseCommand("CanaryRelease", "canary", "Act on a CanaryRelease: promote, abort, pause, resume, approve, retry", []actionVerb{
		{use: "promote", short: "Run the next step now; --full goes to 100% at once, skipping the remaining steps and gates", action: v1alpha1.ActionPromote,
			flags: func(cmd *cobra.Command) func(*v1alpha1.ReleaseActionSpec) error {
				full := cmd.Flags().Bool("full", false, "Go to 100% at once, skipping the remaining steps and gates.")
				return func(s *v1alpha1.ReleaseActionSpec) error { s.Full = *full; return nil }
			}},
		{use: "abort", short: "Send all traffic to the baseline; the release ends Aborted", action: v1alpha1.ActionAbort},
		{use: "pause", short: "Freeze the weights until resume", action: v1alpha1.ActionPause},
		{use: "resume", short: "Let a paused release go on", action: v1alpha1.ActionResume},
		{use: "approve", short: "Let a ManualGate open up to --weight", action: v1alpha1.ActionApprove,
			flags: func(cmd *cobra.Command) func(*v1alpha1.ReleaseActionSpec) error {
				weight := cmd.Flags().Int32("weight", -1, "The canary weight, 0 to 100, the ManualGate may open up to.")
				return func(s *v1alpha1.ReleaseActionSpec) error {
					if *weight < 0 || *weight > 100 {
						return errors.New("approve needs --weight, a whole number from 0 to 100")
					}
					s.Weight = weight
					return nil
				}
			}},
		{use: "retry", short: "Start a rolled-back or aborted release again from its first step", action: v1alpha1.ActionRetry},
	})
}

func newExperimentCommand() *cobra.Command {
	return newReleaseCommand("Experiment", "experiment", "Act on an Experiment: pause, resume, abort, conclude", []actionVerb{
		{use: "pause", short: "Freeze the weights until resume", action: v1alpha1.ActionPause},
		{use: "resume", short: "Let a paused experiment go on", action: v1alpha1.ActionResume},
		{use: "abort", short: "Send all traffic to the first subset; the experiment ends Aborted", action: v1alpha1.ActionAbort},
		{use: "conclude", short: "End the experiment with --winner taking all traffic", action: v1alpha1.ActionConclude,
			flags: func(cmd *cobra.Command) func(*v1alpha1.ReleaseActionSpec) error {
				winner := cmd.Flags().String("winner", "", "The subset that takes all traffic.")
				return func(s *v1alpha1.ReleaseActionSpec) error {
					if *winner == "" {
						return errors.New("conclude needs --winner SUBSET")
					}
					s.Winner = *winner
					return nil
				}
			}},
	})
}

func newPlanCommand() *cobra.Command {
	return newReleaseCommand("ReleasePlan", "plan", "Act on a ReleasePlan: pause, resume, abort, promote-wave", []actionVerb{
		{use: "pause", short: "Start no wave or VirtualCluster, and hold the plan's releases at their weights, until resume", action: v1alpha1.ActionPause},
		{use: "resume", short: "Let a paused plan go on", action: v1alpha1.ActionResume},
		{use: "abort", short: "End the plan: no wave starts any more, its running releases are aborted (the waves promoted keep the subset)", action: v1alpha1.ActionAbort},
		{use: "promote-wave", short: "Promote the current wave's releases at once and start the next wave without waiting for its soak", action: v1alpha1.ActionPromote},
	})
}

// act creates a ReleaseAction and waits for the release's executor to
// apply or refuse it.
func act(ctx context.Context, c client.Client, namespace string, spec v1alpha1.ReleaseActionSpec, wait time.Duration, out io.Writer) error {
	what := release.Target(namespace, spec)
	a, err := release.Ask(ctx, c, namespace, spec)
	if err != nil {
		return err
	}
	if wait <= 0 {
		fmt.Fprintf(out, "%s: %s asked (releaseaction %s)\n", what, spec.Summary(), a.Name)
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	a, err = release.Await(ctx, c, a, 200*time.Millisecond)
	switch {
	case errors.Is(err, release.ErrNotSettled):
		return fmt.Errorf("%s: %s is asked (releaseaction %s) but not applied after %s: is the Kubist manager running?", what, spec.Summary(), a.Name, wait)
	case err != nil:
		return err
	case a.Status.Phase == v1alpha1.ActionRefused:
		return fmt.Errorf("%s: %s refused: %s", what, spec.Summary(), a.Status.Message)
	}
	fmt.Fprintf(out, "%s: %s by %s: %s\n", what, spec.Summary(), a.Spec.RequestedBy, a.Status.Message)
	return nil
}
