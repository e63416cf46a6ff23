package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newPauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER [CONTAINER...]",
		Short: "Pause all processes within one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(e *engine.Engine, ref string) error {
				_, err := e.Pause(ref)
				return err
			})
		},
	}
}

func newUnpauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unpause CONTAINER [CONTAINER...]",
		Short: "Unpause all processes within one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(e *engine.Engine, ref string) error {
				_, err := e.Unpause(ref)
				return err
			})
		},
	}
}
