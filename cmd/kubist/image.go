//go:build !manager_only

package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kubist-io/kubist/internal/localenv/images"
)

// newImageCommand builds an image of one static binary without Docker
// (`make image`): what the Dockerfile's distroless image holds, as an
// archive that `ctr images import` and `docker load` read.
func newImageCommand() *cobra.Command {
	var binary, name, ref, out string
	cmd := &cobra.Command{
		Use:    "image",
		Short:  "Build an image of one static binary on an empty base, without Docker, as an image archive",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			img, err := images.Binary(binary, name)
			if err != nil {
				return err
			}
			if err := images.WriteArchive(img, ref, out); err != nil {
				return err
			}
			digest, err := img.Digest()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (%s), /%s as %s\n", out, ref, digest, name, images.Nonroot)
			return err
		},
	}
	cmd.Flags().StringVar(&binary, "binary", "bin/kubist-linux-static", "The static binary the image holds.")
	cmd.Flags().StringVar(&name, "name", "kubist", "Its name in the image, at the root; the entrypoint.")
	cmd.Flags().StringVar(&ref, "ref", "ghcr.io/kubist-io/kubist:dev", "The image's reference in the archive.")
	cmd.Flags().StringVar(&out, "out", "bin/images/kubist.tar", "The archive to write.")
	return cmd
}
