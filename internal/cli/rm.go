package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newRmCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Remove one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(e *engine.Engine, ref string) error {
				_, err := e.Remove(ref, force)
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill and remove a running container")
	return cmd
}
