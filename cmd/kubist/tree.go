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
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/scheme"
	"github.com/kubist-io/kubist/internal/tree"
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

// renderTree reads every Kubist resource and draws the tree.
func renderTree(ctx context.Context, c client.Reader) (string, error) {
	objects, err := tree.Read(ctx, c)
	if err != nil {
		return "", err
	}
	roots := tree.Build(objects)
	if len(roots) == 0 {
		return "No Kubist resources.\n", nil
	}
	var b strings.Builder
	for _, r := range roots {
		b.WriteString(line(r) + "\n")
		draw(&b, r.Children, "")
	}
	return b.String(), nil
}

func draw(b *strings.Builder, nodes []*tree.Node, prefix string) {
	for i, n := range nodes {
		branch, next := "├── ", "│   "
		if i == len(nodes)-1 {
			branch, next = "└── ", "    "
		}
		b.WriteString(prefix + branch + line(n) + "\n")
		draw(b, n.Children, prefix+next)
	}
}

// line is a node's line: the orphans' group by its title, a resource by
// describe.
func line(n *tree.Node) string {
	if n.Object == nil {
		return n.Kind
	}
	return describe(n.Kind, n.Object, n.Detail)
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
