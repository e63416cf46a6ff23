package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newImagePruneCmd(g *globals) *cobra.Command {
	var all, force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove untagged images (-a: every image) that no container uses",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			rep, err := e.PruneImages(all)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(rep.Untagged)+len(rep.Deleted) > 0 {
				fmt.Fprintln(out, "Deleted Images:")
				for _, n := range rep.Untagged {
					fmt.Fprintf(out, "untagged: %s\n", n)
				}
				for _, id := range rep.Deleted {
					fmt.Fprintf(out, "deleted: %s\n", id)
				}
				fmt.Fprintln(out)
			}
			fmt.Fprintf(out, "Total reclaimed space: %s\n", humanSize(rep.Reclaimed))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "remove all images no container uses, not only untagged ones")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "do not prompt (cfs never prompts; accepted for compatibility)")
	return cmd
}
