package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubist-io/kubist/internal/manifest"
	"github.com/kubist-io/kubist/reconciler"
	"github.com/kubist-io/kubist/webhook"
)

func newValidateCommand() *cobra.Command {
	var paths []string
	cmd := &cobra.Command{
		Use:   "validate -f PATH",
		Short: "Check Kubist manifests offline, as the API server and Kubist's webhooks would",
		Long: "Check every kubist.io object in the files, directories (recursively) or\n" +
			"standard input (-f -) as the API server with Kubist's webhooks would on\n" +
			"creation: unknown fields, the CRDs' schemas and CEL rules, defaulting, then\n" +
			"executor, policy and kind validation. Policy objects in the input are\n" +
			"registered first. Prints PATH: Kind/name: field.path: message per problem,\n" +
			"warnings as Warning: lines, and exits 1 when anything is invalid.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(paths) == 0 {
				return errors.New("-f is required: a file, a directory, or - for standard input")
			}
			var objects []manifest.Object
			for _, p := range paths {
				loaded, err := manifest.Load(p, cmd.InOrStdin())
				if err != nil {
					return err
				}
				objects = append(objects, loaded...)
			}
			compiler, registry, err := predefinedRegistry(cmd.Context())
			if err != nil {
				return err
			}
			if err := reconciler.RegisterExecutors(registry); err != nil {
				return err
			}
			offline, err := webhook.NewOffline(&webhook.Admission{Registry: registry, Compiler: compiler})
			if err != nil {
				return err
			}
			invalid := map[string]bool{}
			checked := 0
			for _, f := range offline.Check(cmd.Context(), objects) {
				fmt.Fprintln(cmd.OutOrStdout(), f)
				if !f.Warning {
					invalid[f.Source] = true
				}
			}
			for _, o := range objects {
				if o.GetAPIVersion() == "kubist.io/v1alpha1" {
					checked++
				}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%d Kubist objects checked, %d invalid\n", checked, len(invalid))
			if len(invalid) > 0 {
				return errSilentFailure
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&paths, "filename", "f", nil, "File, directory or - (stdin) with manifests; repeatable.")
	return cmd
}

// errSilentFailure fails the command after it has said why.
var errSilentFailure = errors.New("")
