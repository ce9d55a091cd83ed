//go:build !manager_only

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kubist-io/kubist/api/v1alpha1"
	"github.com/kubist-io/kubist/internal/cli/tree"
	"github.com/kubist-io/kubist/internal/kubeconfig"
	"github.com/kubist-io/kubist/internal/scheme"
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
			cfg, err := kubeconfig.Load(opts.kubeconfig)
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
// changes: on a terminal it redraws it in place, below what was printed
// before it; elsewhere (a pipe, a file) it appends.
func watchRendered(ctx context.Context, out io.Writer, interval time.Duration, terminal bool, title string, render func(context.Context) (string, error)) error {
	last := ""
	lines := 0
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		text, err := render(ctx)
		if err != nil && ctx.Err() == nil {
			text = fmt.Sprintf("cannot read it: %v\n", err)
		}
		if text != last && ctx.Err() == nil {
			frame := fmt.Sprintf("%s  %s\n%s", time.Now().Format(time.TimeOnly), title, text)
			width, height := terminalSize(out)
			switch {
			case terminal:
				fmt.Fprint(out, redraw(lines, rows(frame, width), height))
			case last != "":
				fmt.Fprintln(out)
			}
			fmt.Fprint(out, frame)
			last, lines = text, rows(frame, width)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// redraw is what erases a frame of previous lines before one of next
// lines is printed: the cursor goes back up to the previous frame's first
// line and clears to the end of the screen; frames taller than the
// terminal, which the cursor cannot go back over, clear the whole screen.
func redraw(previous, next, height int) string {
	switch {
	case previous == 0:
		return ""
	case height > 0 && (previous >= height || next >= height):
		return "\033[H\033[2J"
	default:
		return fmt.Sprintf("\033[%dF\033[J", previous)
	}
}

// rows is how many terminal rows text takes at width columns (0: one
// row per line), long lines wrapping.
func rows(text string, width int) int {
	n := 0
	for _, line := range strings.SplitAfter(text, "\n") {
		if line == "" {
			continue
		}
		cols := utf8.RuneCountInString(strings.TrimSuffix(line, "\n"))
		if width <= 0 || cols <= width {
			n++
		} else {
			n += (cols + width - 1) / width
		}
	}
	return n
}

// terminalSize is the width and height of the terminal out writes to, or
// zeros.
func terminalSize(out io.Writer) (width, height int) {
	f, ok := out.(*os.File)
	if !ok {
		return 0, 0
	}
	w, h, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0, 0
	}
	return w, h
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
