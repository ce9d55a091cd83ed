// Package offline holds the kubist commands that need no manager: kubist
// policy (list, test, eval), kubist executor list and kubist validate.
// They check policies and manifests with the catalog, the policy engine
// and the webhook's own code; a cluster, when given, is only read.
package offline

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kubist-io/kubist/catalog"
	"github.com/kubist-io/kubist/policies"
)

// NewExecutorCommand is kubist executor.
func NewExecutorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "executor",
		Short: "List the executors a resource's executor stanza may name",
	}
	var markdown bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List every executor with its kinds, properties and parameters",
		Long: "List every registered executor: the kinds it reconciles, whether it is the\n" +
			"kind's default (filled in when a resource names none) and whether it is\n" +
			"read-only (computes and reports the desired state without writing it), and\n" +
			"its parameters with their defaults. --markdown prints the README's table.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			executors, err := catalog.New()
			if err != nil {
				return err
			}
			if markdown {
				return ExecutorTable(cmd.OutOrStdout(), executors.Executors())
			}
			out := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			fmt.Fprintln(out, "NAME\tKINDS\tDEFAULT\tREAD-ONLY\tPARAMETERS\tDESCRIPTION")
			for _, e := range executors.Executors() {
				fmt.Fprintf(out, "%s\t%s\t%v\t%v\t%s\t%s\n", e.Name, strings.Join(e.Kinds, ","), e.Default, e.ReadOnly,
					cmp.Or(strings.Join(parameterNames(e.Schema), ","), "-"), e.Description)
			}
			return out.Flush()
		},
	}
	list.Flags().BoolVar(&markdown, "markdown", false, "Print a Markdown table, parameters described.")
	cmd.AddCommand(list)
	return cmd
}

// parameterNames are a schema's top-level parameters, sorted.
func parameterNames(s *policies.Schema) []string {
	names := make([]string, 0, len(s.Props.Properties))
	for name := range s.Props.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// ExecutorTable is the README's table of executors: each with its kinds,
// properties, and parameters described with their defaults.
func ExecutorTable(w io.Writer, executors []*catalog.Executor) error {
	fmt.Fprintln(w, "| executor | kinds | default | read-only | parameters |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, e := range executors {
		var params []string
		for _, name := range parameterNames(e.Schema) {
			p := e.Schema.Props.Properties[name]
			desc := fmt.Sprintf("`%s` (%s", name, p.Type)
			if p.Default != nil {
				var def any
				if err := json.Unmarshal(p.Default.Raw, &def); err != nil {
					return fmt.Errorf("%s: default of %s: %w", e.Name, name, err)
				}
				desc += fmt.Sprintf(", default `%v`", def)
			}
			params = append(params, desc+"): "+strings.TrimSuffix(p.Description, "."))
		}
		yes := func(b bool) string {
			if b {
				return "yes"
			}
			return ""
		}
		fmt.Fprintf(w, "| `%s` | %s | %s | %s | %s |\n", e.Name, strings.Join(e.Kinds, ", "), yes(e.Default), yes(e.ReadOnly),
			cmp.Or(strings.Join(params, "; "), "-"))
	}
	return nil
}
