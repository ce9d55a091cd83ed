package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/webhook"
)

type treeOptions struct {
	kubeconfig string
	watch      bool
	interval   time.Duration
}

func newTreeCommand() *cobra.Command {
	opts := treeOptions{interval: time.Second}
	cmd := &cobra.Command{
		Use:   "tree",
		Short: "Show the Kubist tree of a cluster: executors, readiness, canary weights",
		Long: "Print every Project with its Clusters, VirtualClusters and their Applications,\n" +
			"Destinations and Routes, each Route's CanaryReleases and Experiments: the\n" +
			"executor of each, its Ready condition and, for canaries and experiments, the\n" +
			"phase and weights. --watch redraws it whenever it changes.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := restConfig(opts.kubeconfig)
			if err != nil {
				return err
			}
			c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
			if err != nil {
				return err
			}
			if !opts.watch {
				tree, err := renderTree(cmd.Context(), c)
				if err != nil {
					return err
				}
				_, err = io.WriteString(cmd.OutOrStdout(), tree)
				return err
			}
			return watchTree(cmd.Context(), c, cmd.OutOrStdout(), opts.interval, isTerminal(cmd.OutOrStdout()))
		},
	}
	cmd.Flags().StringVar(&opts.kubeconfig, "kubeconfig", "", "Path to a kubeconfig; defaults to $KUBECONFIG or ~/.kube/config.")
	cmd.Flags().BoolVarP(&opts.watch, "watch", "w", false, "Redraw the tree whenever it changes, until interrupted.")
	cmd.Flags().DurationVar(&opts.interval, "interval", opts.interval, "How often --watch reads the tree.")
	return cmd
}

// watchTree prints the tree, then again each time it changes.
func watchTree(ctx context.Context, c client.Reader, out io.Writer, interval time.Duration, terminal bool) error {
	return watchRendered(ctx, out, interval, terminal, "(kubist tree --watch)",
		func(ctx context.Context) (string, error) { return renderTree(ctx, c) })
}

// watchRendered prints what render draws, then again each time it
// changes: on a terminal it redraws in place, elsewhere it appends.
func watchRendered(ctx context.Context, out io.Writer, interval time.Duration, terminal bool, title string, render func(context.Context) (string, error)) error {
	last := ""
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		text, err := render(ctx)
		if err != nil && ctx.Err() == nil {
			text = fmt.Sprintf("cannot read it: %v\n", err)
		}
		if text != last && ctx.Err() == nil {
			if terminal {
				fmt.Fprint(out, "\033[H\033[2J")
			} else if last != "" {
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "%s  %s\n%s", time.Now().Format(time.TimeOnly), title, text)
			last = text
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// node is one line of the tree and the lines beneath it.
type node struct {
	line     string
	children []*node
}

// renderTree reads every Kubist resource and draws the tree.
func renderTree(ctx context.Context, c client.Reader) (string, error) {
	var (
		projects v1alpha1.ProjectList
		clusters v1alpha1.ClusterList
		vcs      v1alpha1.VirtualClusterList
		apps     v1alpha1.ApplicationList
		dests    v1alpha1.DestinationList
		routes   v1alpha1.RouteList
		canaries v1alpha1.CanaryReleaseList
		exps     v1alpha1.ExperimentList
	)
	for _, l := range []client.ObjectList{&projects, &clusters, &vcs, &apps, &dests, &routes, &canaries, &exps} {
		if err := c.List(ctx, l); err != nil {
			return "", fmt.Errorf("list Kubist resources: %w", err)
		}
	}
	var roots []*node
	placed := map[string]bool{}
	mark := func(kind string, o client.Object) { placed[kind+"/"+o.GetNamespace()+"/"+o.GetName()] = true }

	routeNode := func(r *v1alpha1.Route) *node {
		n := &node{line: describe("Route", r, "VirtualService "+r.Status.VirtualService)}
		mark("Route", r)
		for i := range canaries.Items {
			cr := &canaries.Items[i]
			if cr.Namespace == r.Namespace && cr.Spec.Route == r.Name {
				mark("CanaryRelease", cr)
				n.children = append(n.children, &node{line: describe("CanaryRelease", cr, canaryDetail(cr))})
			}
		}
		for i := range exps.Items {
			e := &exps.Items[i]
			if e.Namespace == r.Namespace && e.Spec.Route == r.Name {
				mark("Experiment", e)
				n.children = append(n.children, &node{line: describe("Experiment", e, experimentDetail(e))})
			}
		}
		return n
	}
	vcNode := func(vc *v1alpha1.VirtualCluster) *node {
		n := &node{line: describe("VirtualCluster", vc, "namespace "+vc.Status.Namespace)}
		mark("VirtualCluster", vc)
		for i := range apps.Items {
			if a := &apps.Items[i]; a.Namespace == vc.Name {
				mark("Application", a)
				n.children = append(n.children, &node{line: describe("Application", a, versionsDetail(a))})
			}
		}
		for i := range dests.Items {
			if d := &dests.Items[i]; d.Namespace == vc.Name {
				mark("Destination", d)
				n.children = append(n.children, &node{line: describe("Destination", d, "subsets "+strings.Join(d.Status.Subsets, ", "))})
			}
		}
		for i := range routes.Items {
			if r := &routes.Items[i]; r.Namespace == vc.Name {
				n.children = append(n.children, routeNode(r))
			}
		}
		return n
	}
	clusterNode := func(cl *v1alpha1.Cluster) *node {
		detail := ""
		if istio := meta.FindStatusCondition(cl.Status.Conditions, v1alpha1.ConditionIstioReady); istio != nil {
			detail = fmt.Sprintf("IstioReady=%s (%s)", istio.Status, istio.Reason)
		}
		n := &node{line: describe("Cluster", cl, detail)}
		mark("Cluster", cl)
		for i := range vcs.Items {
			if vc := &vcs.Items[i]; vc.Spec.Cluster == cl.Name {
				n.children = append(n.children, vcNode(vc))
			}
		}
		return n
	}
	for i := range projects.Items {
		p := &projects.Items[i]
		n := &node{line: describe("Project", p, "")}
		mark("Project", p)
		for j := range clusters.Items {
			if cl := &clusters.Items[j]; cl.Spec.Project == p.Name {
				n.children = append(n.children, clusterNode(cl))
			}
		}
		roots = append(roots, n)
	}
	// Resources whose parent does not exist (yet) are listed apart.
	orphans := &node{line: "(resources whose parent does not exist)"}
	for i := range clusters.Items {
		if cl := &clusters.Items[i]; !placed["Cluster//"+cl.Name] {
			orphans.children = append(orphans.children, clusterNode(cl))
		}
	}
	for i := range vcs.Items {
		if vc := &vcs.Items[i]; !placed["VirtualCluster//"+vc.Name] {
			orphans.children = append(orphans.children, vcNode(vc))
		}
	}
	for _, l := range []client.ObjectList{&apps, &dests, &routes, &canaries, &exps} {
		_ = meta.EachListItem(l, func(o runtime.Object) error {
			obj := o.(v1alpha1.Object)
			kind := webhook.KindOf(obj)
			if !placed[kind+"/"+obj.GetNamespace()+"/"+obj.GetName()] {
				if r, ok := obj.(*v1alpha1.Route); ok {
					orphans.children = append(orphans.children, routeNode(r))
				} else {
					orphans.children = append(orphans.children, &node{line: describe(kind, obj, "")})
				}
			}
			return nil
		})
	}
	if len(orphans.children) > 0 {
		roots = append(roots, orphans)
	}
	if len(roots) == 0 {
		return "No Kubist resources.\n", nil
	}
	var b strings.Builder
	for _, r := range roots {
		b.WriteString(r.line + "\n")
		draw(&b, r.children, "")
	}
	return b.String(), nil
}

func draw(b *strings.Builder, nodes []*node, prefix string) {
	for i, n := range nodes {
		branch, next := "├── ", "│   "
		if i == len(nodes)-1 {
			branch, next = "└── ", "    "
		}
		b.WriteString(prefix + branch + n.line + "\n")
		draw(b, n.children, prefix+next)
	}
}

// describe is a resource's line: kind/name, executor, Ready, and detail.
func describe(kind string, obj v1alpha1.Object, detail string) string {
	name := obj.GetName()
	if obj.GetNamespace() != "" {
		name = obj.GetNamespace() + "/" + name
	}
	executor := "(default executor)"
	if ref := obj.GetStanzas().Executor; ref != nil && ref.Name != "" {
		executor = ref.Name
	}
	ready := "Ready=Unknown"
	if c := meta.FindStatusCondition(obj.GetCommonStatus().Conditions, v1alpha1.ConditionReady); c != nil {
		ready = "Ready=" + string(c.Status)
		if c.Status != "True" {
			ready += fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
		}
	}
	parts := []string{kind + " " + name, executor, ready}
	if detail != "" {
		parts = append(parts, detail)
	}
	return strings.Join(parts, "  ")
}

func canaryDetail(c *v1alpha1.CanaryRelease) string {
	var policies []string
	for _, p := range c.Spec.Policies {
		policies = append(policies, p.Name)
	}
	detail := fmt.Sprintf("%s  %s", orPending(string(c.Status.Phase)), weightsString(c.Status.Weights))
	if s := c.Status.Served; s != nil {
		// What the mesh reported serving, measured after the last step.
		detail += "  served " + s.Summary
	}
	return fmt.Sprintf("%s  [%s]", detail, strings.Join(policies, ", "))
}

func experimentDetail(e *v1alpha1.Experiment) string {
	s := fmt.Sprintf("%s  %s", orPending(string(e.Status.Phase)), weightsString(e.Status.Weights))
	if e.Status.Winner != "" {
		s += "  winner " + e.Status.Winner
	}
	return s
}

func versionsDetail(a *v1alpha1.Application) string {
	var parts []string
	for _, v := range a.Status.Versions {
		parts = append(parts, fmt.Sprintf("%s %d/%d ready", v.Name, v.ReadyReplicas, v.Replicas))
	}
	return strings.Join(parts, ", ")
}

func weightsString(w map[string]int32) string {
	if len(w) == 0 {
		return "no weights yet"
	}
	return v1alpha1.SplitString(w)
}

func orPending(s string) string {
	if s == "" {
		return "Pending"
	}
	return s
}
