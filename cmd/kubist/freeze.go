//go:build !manager_only

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
)

// newFreezeCommands are kubist freeze and kubist unfreeze: the annotation
// kubist.io/freeze on a Project, which FreezeGate reads.
func newFreezeCommands() []*cobra.Command {
	var reason string
	freeze := &cobra.Command{
		Use:   "freeze PROJECT --reason TEXT",
		Short: "Freeze a Project: FreezeGate holds every forward step of the releases below it (rollbacks pass) until kubist unfreeze",
		Args:  cobra.ExactArgs(1),
	}
	freezeFlags := clientFlags(freeze)
	freeze.Flags().StringVar(&reason, "reason", "", "Why the Project is frozen, shown in each held release's decisions and Events (required).")
	freeze.RunE = func(cmd *cobra.Command, args []string) error {
		if strings.TrimSpace(reason) == "" {
			return fmt.Errorf("--reason is required: say why, e.g. --reason \"incident 42\"; it is what each held release shows")
		}
		c, _, err := clientOf(freezeFlags)
		if err != nil {
			return err
		}
		return setFreeze(cmd.Context(), c, cmd.OutOrStdout(), args[0], &reason)
	}
	unfreeze := &cobra.Command{
		Use:   "unfreeze PROJECT",
		Short: "Unfreeze a Project: its releases step again (each within 30 s, when FreezeGate looks again)",
		Args:  cobra.ExactArgs(1),
	}
	unfreezeFlags := clientFlags(unfreeze)
	unfreeze.RunE = func(cmd *cobra.Command, args []string) error {
		c, _, err := clientOf(unfreezeFlags)
		if err != nil {
			return err
		}
		return setFreeze(cmd.Context(), c, cmd.OutOrStdout(), args[0], nil)
	}
	return []*cobra.Command{freeze, unfreeze}
}

// setFreeze sets (reason) or removes (nil) a Project's freeze annotation,
// and says what it does.
func setFreeze(ctx context.Context, c client.Client, out io.Writer, name string, reason *string) error {
	var project v1alpha1.Project
	if err := c.Get(ctx, types.NamespacedName{Name: name}, &project); err != nil {
		return fmt.Errorf("project %s: %w", name, err)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{v1alpha1.AnnotationFreeze: reason}}})
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, &project, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("project %s: %w", name, err)
	}
	if reason == nil {
		fmt.Fprintf(out, "project.kubist.io/%s unfrozen: its releases step again\n", name)
		return nil
	}
	fmt.Fprintf(out, "project.kubist.io/%s frozen: %s\n", name, *reason)
	if !slices.ContainsFunc(project.Spec.ReleasePolicies, func(p v1alpha1.PolicyRef) bool { return p.Name == "FreezeGate" }) {
		fmt.Fprintf(out, "Warning: Project %s's releasePolicies have no FreezeGate: only the releases whose Cluster or VirtualCluster adds one hold; add {name: FreezeGate} to spec.releasePolicies\n", name)
	}
	return nil
}
