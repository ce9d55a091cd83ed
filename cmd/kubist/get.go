//go:build !manager_only

package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/cli/tree"
	"github.com/kubist-io/kubist/internal/release"
)

// eventsShown is how many of a release's last Events the view shows.
const eventsShown = 8

func newGetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "get",
		Short: "Show one release's whole story (phase, weights, served split, history, gates, conditions, events), or a Route's releases",
	}
	flags := clientFlags(cmd)
	var output string
	var watch bool
	var interval time.Duration
	for _, k := range []struct{ use, kind string }{{"canary", "CanaryRelease"}, {"experiment", "Experiment"}} {
		sub := &cobra.Command{
			Use:     k.use + " NAME",
			Aliases: []string{strings.ToLower(k.kind)},
			Short:   "Show a " + k.kind + ": phase, weights, the step history with the metrics each decision saw, pending gates, conditions, last events",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, namespace, err := clientOf(flags)
				if err != nil {
					return err
				}
				key := types.NamespacedName{Namespace: namespace, Name: args[0]}
				render := func(ctx context.Context) (string, error) { return renderRelease(ctx, c, k.kind, key, output) }
				return show(cmd, watch, interval, fmt.Sprintf("(kubist get %s %s --watch)", k.use, args[0]), render)
			},
		}
		cmd.AddCommand(sub)
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "route NAME",
		Short: "Show a Route: its stable subsets, whether its spec names them, and the releases that ended on it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, namespace, err := clientOf(flags)
			if err != nil {
				return err
			}
			key := types.NamespacedName{Namespace: namespace, Name: args[0]}
			render := func(ctx context.Context) (string, error) {
				var route v1alpha1.Route
				if err := c.Get(ctx, key, &route); err != nil {
					return "", fmt.Errorf("route %s: %w", key, err)
				}
				if output != "" {
					return marshalled(&route, output)
				}
				return describeRoute(&route), nil
			}
			return show(cmd, watch, interval, fmt.Sprintf("(kubist get route %s --watch)", args[0]), render)
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:     "plan NAME",
		Aliases: []string{"releaseplan"},
		Short:   "Show a ReleasePlan: each wave with its VirtualClusters and their releases, the figures of each wave across its clusters, its decisions and history",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := clientOf(flags)
			if err != nil {
				return err
			}
			render := func(ctx context.Context) (string, error) {
				var p v1alpha1.ReleasePlan
				if err := c.Get(ctx, types.NamespacedName{Name: args[0]}, &p); err != nil {
					return "", fmt.Errorf("releaseplan %s: %w", args[0], err)
				}
				if output != "" {
					return marshalled(&p, output)
				}
				return describePlan(&p), nil
			}
			return show(cmd, watch, interval, fmt.Sprintf("(kubist get plan %s --watch)", args[0]), render)
		},
	})
	cmd.PersistentFlags().StringVarP(&output, "output", "o", "", "Output format: json or yaml (the object as stored); the default is the view for people.")
	cmd.PersistentFlags().BoolVarP(&watch, "watch", "w", false, "Redraw whenever the release changes, until interrupted: in place on a terminal, appended elsewhere.")
	cmd.PersistentFlags().DurationVar(&interval, "interval", time.Second, "How often --watch reads the release.")
	return cmd
}

// show prints what render draws once, or, with --watch, redraws it every
// interval under title until interrupted.
func show(cmd *cobra.Command, watch bool, interval time.Duration, title string, render func(context.Context) (string, error)) error {
	if !watch {
		text, err := render(cmd.Context())
		if err != nil {
			return err
		}
		_, err = fmt.Fprint(cmd.OutOrStdout(), text)
		return err
	}
	return watchRendered(cmd.Context(), cmd.OutOrStdout(), interval, isTerminal(cmd.OutOrStdout()), title, render)
}

// renderRelease reads a release and its Events and draws them.
func renderRelease(ctx context.Context, c client.Reader, kind string, key types.NamespacedName, output string) (string, error) {
	var obj v1alpha1.Object = &v1alpha1.CanaryRelease{}
	if kind == "Experiment" {
		obj = &v1alpha1.Experiment{}
	}
	if err := c.Get(ctx, key, obj); err != nil {
		return "", fmt.Errorf("%s %s: %w", kind, key, err)
	}
	if output != "" {
		return marshalled(obj, output)
	}
	var pages v1alpha1.ReleaseHistoryList
	archived := ""
	if err := c.List(ctx, &pages, client.InNamespace(key.Namespace), client.MatchingFields{v1alpha1.HistoryField: key.Name}); err != nil {
		// The rest of the view is still worth showing.
		archived = fmt.Sprintf("  the older steps are not shown: %v\n", err)
	}
	var events eventsv1.EventList
	if err := c.List(ctx, &events, client.InNamespace(key.Namespace)); err != nil {
		return "", fmt.Errorf("list the events of %s %s: %w", kind, key, err)
	}
	var mine []eventsv1.Event
	for _, e := range events.Items {
		if e.Regarding.Kind == kind && e.Regarding.Name == key.Name && e.Regarding.UID == obj.GetUID() {
			mine = append(mine, e)
		}
	}
	return describeRelease(obj, release.History(obj, pages.Items), archived, mine), nil
}

// describeRelease is the view of a release for people: the release, its
// whole history (and a line on what of it could not be read) and its
// Events.
func describeRelease(obj v1alpha1.Object, history []v1alpha1.ReleaseStep, archived string, events []eventsv1.Event) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	status := obj.GetCommonStatus()
	switch o := obj.(type) {
	case *v1alpha1.CanaryRelease:
		fmt.Fprintf(tw, "CanaryRelease:\t%s/%s\n", o.Namespace, o.Name)
		fmt.Fprintf(tw, "Route:\t%s (destination %s, canary %s, baseline %s)\n", o.Spec.Route, o.Spec.Destination, o.Spec.Subset, cmp.Or(o.BaselineSubset(), "-"))
		fmt.Fprintf(tw, "Phase:\t%s\n", tree.Phase(string(o.Status.Phase)))
		fmt.Fprintf(tw, "Weights:\t%s\n", tree.Weights(o.Status.Weights))
		if s := o.Status.Served; s != nil && s.Summary != "" {
			fmt.Fprintf(tw, "Served:\t%s (%d requests, when the weights were %s)\n", s.Summary, s.Requests, v1alpha1.SplitString(s.Weights))
		}
		if o.Status.ApprovedWeight != nil {
			fmt.Fprintf(tw, "Approved:\tup to %d%%\n", *o.Status.ApprovedWeight)
		}
	case *v1alpha1.Experiment:
		fmt.Fprintf(tw, "Experiment:\t%s/%s\n", o.Namespace, o.Name)
		fmt.Fprintf(tw, "Route:\t%s (destination %s, subsets %s)\n", o.Spec.Route, o.Spec.Destination, strings.Join(o.Spec.Subsets, ", "))
		fmt.Fprintf(tw, "Phase:\t%s\n", tree.Phase(string(o.Status.Phase)))
		fmt.Fprintf(tw, "Weights:\t%s\n", tree.Weights(o.Status.Weights))
		if o.Status.Winner != "" {
			fmt.Fprintf(tw, "Winner:\t%s\n", o.Status.Winner)
		}
	}
	fmt.Fprintf(tw, "Policies:\t%s\n", cmp.Or(strings.Join(release.Chain(obj), " → "), "-"))
	gates := release.GatesWaiting(obj)
	fmt.Fprintf(tw, "Gates:\t%s\n", cmp.Or(strings.Join(gates, "; "), "none waiting"))
	_ = tw.Flush()

	b.WriteString("\nHistory:\n")
	b.WriteString(archived)
	if len(history) == 0 {
		b.WriteString("  no steps yet\n")
	} else {
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  TIME\tWEIGHTS\tPHASE\tBY\tREQUESTS\tERROR RATE\tP99\tMESSAGE")
		for _, h := range history {
			requests, errorRate, p99 := release.StepFigures(h.Metrics)
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Time.UTC().Format(time.TimeOnly), v1alpha1.SplitString(h.Weights),
				cmp.Or(h.Phase, "-"), release.DecidedBy(h), requests, errorRate, p99, h.Message)
		}
		_ = tw.Flush()
	}

	b.WriteString("\nConditions:\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range status.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	_ = tw.Flush()

	b.WriteString("\nEvents:\n")
	if len(events) == 0 {
		b.WriteString("  none\n")
		return b.String()
	}
	slices.SortFunc(events, func(a, b eventsv1.Event) int { return release.EventTime(&a).Compare(release.EventTime(&b)) })
	if len(events) > eventsShown {
		events = events[len(events)-eventsShown:]
	}
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, e := range events {
		count := ""
		if e.Series != nil && e.Series.Count > 1 {
			count = fmt.Sprintf(" (x%d)", e.Series.Count)
		} else if e.DeprecatedCount > 1 {
			count = fmt.Sprintf(" (x%d)", e.DeprecatedCount)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s%s\n", release.EventTime(&e).UTC().Format(time.TimeOnly), e.Type, e.Reason, e.Note, count)
	}
	_ = tw.Flush()
	return b.String()
}

// marshalled is an object as stored, in json or yaml.
func marshalled(obj any, output string) (string, error) {
	switch output {
	case "json":
		raw, err := json.MarshalIndent(obj, "", "  ")
		return string(raw) + "\n", err
	case "yaml":
		raw, err := yaml.Marshal(obj)
		return string(raw), err
	}
	return "", fmt.Errorf("unknown output format %q: json or yaml", output)
}

// describeRoute is the view of a Route for people: what it applied, its
// stable subsets (and what its spec names), the releases that ended on it
// and its conditions.
// describePlan is the view of a ReleasePlan for people.
func describePlan(p *v1alpha1.ReleasePlan) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ReleasePlan:\t%s\n", p.Name)
	fmt.Fprintf(tw, "Project:\t%s\n", p.Spec.Project)
	fmt.Fprintf(tw, "Routes:\t%s\n", strings.Join(p.Spec.Routes, ", "))
	fmt.Fprintf(tw, "Subset:\t%s\n", cmp.Or(p.Status.Subset, p.Spec.Subset, "the newest ready one"))
	fmt.Fprintf(tw, "Phase:\t%s\n", cmp.Or(p.Status.Summary, string(p.Status.Phase), "not reconciled yet"))
	fmt.Fprintf(tw, "Policies:\t%s\n", strings.Join(release.Chain(p), " → "))
	if ready := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady); ready != nil && ready.Status != metav1.ConditionTrue {
		fmt.Fprintf(tw, "Ready:\t%s %s: %s\n", ready.Status, ready.Reason, ready.Message)
	}
	for _, d := range p.Status.Decisions {
		fmt.Fprintf(tw, "Decision:\t%s: %s: %s\n", d.Policy, d.Outcome, d.Message)
	}
	if p.Status.Unplaced > 0 {
		fmt.Fprintf(tw, "Unplaced:\t%d VirtualClusters the plan reaches are in no wave\n", p.Status.Unplaced)
	}
	_ = tw.Flush()
	writeTable(&b, "Waves", "no VirtualCluster placed yet", tree.WavesTable(p))
	writeTable(&b, "Metrics per wave (across its clusters)", "none yet", tree.WaveMetricsTable(p))
	b.WriteString("\nHistory:\n")
	if len(p.Status.History) == 0 {
		b.WriteString("  none yet\n")
	}
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, h := range p.Status.History {
		by := h.Policy
		if h.Action != "" {
			by = h.Action + " by " + cmp.Or(h.User, "unknown user")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", h.Time.UTC().Format(time.TimeOnly), h.Phase, by, h.Message)
	}
	_ = tw.Flush()
	return b.String()
}

// writeTable writes a titled table, or none when it has no rows.
func writeTable(b *strings.Builder, title, none string, t tree.Table) {
	b.WriteString("\n" + title + ":\n")
	if len(t.Rows) == 0 {
		b.WriteString("  " + none + "\n")
		return
	}
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	for _, row := range append([][]string{t.Head}, t.Rows...) {
		fmt.Fprintln(tw, "  "+strings.Join(row, "\t"))
	}
	_ = tw.Flush()
}

func describeRoute(r *v1alpha1.Route) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Route:\t%s/%s\n", r.Namespace, r.Name)
	fmt.Fprintf(tw, "Hosts:\t%s\n", strings.Join(r.Spec.Hosts, ", "))
	applied := "VirtualService " + cmp.Or(r.Status.VirtualService, "-")
	if r.Status.HTTPRoute != "" {
		applied = "HTTPRoute " + r.Status.HTTPRoute
	}
	fmt.Fprintf(tw, "Applied:\t%s\n", applied)
	fmt.Fprintf(tw, "Releasing:\t%s\n", cmp.Or(strings.Join(r.Status.ComposedFrom, ", "), "nothing"))
	_ = tw.Flush()
	writeTable(&b, "Stable", "no rule sends a Destination one subset", tree.StableTable(r))
	writeTable(&b, "Releases", "none ended yet", tree.ReleasesTable(r))

	b.WriteString("\nConditions:\n")
	tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, c := range r.Status.Conditions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Type, c.Status, c.Reason, c.Message)
	}
	_ = tw.Flush()
	return b.String()
}
