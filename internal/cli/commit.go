//go:build !cfs_lean

package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newCommitCmd(g *globals) *cobra.Command {
	var o engine.CommitOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [NAME[:TAG]]",
		Short: "Make an image of a container's changes",
		Long: `Make a new image of a container: its image's layers (shared, not copied) plus
one layer holding what the container changed (its overlay upper directory;
deletions become OCI whiteouts).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			img, err := e.Commit(args[0], name, o)
			if err != nil {
				return err
			}
			_ = quiet
			fmt.Fprintln(cmd.OutOrStdout(), img.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&o.Author, "author", "a", "", "author of the new image")
	cmd.Flags().StringVarP(&o.Message, "message", "m", "", "commit message (the history comment)")
	cmd.Flags().StringArrayVarP(&o.Changes, "change", "c", nil, "apply a Dockerfile instruction to the config (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image ID (the default output)")
	return cmd
}
