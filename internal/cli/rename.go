package cli

import (
	"github.com/spf13/cobra"
)

func newRenameCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			return e.Rename(args[0], args[1])
		},
	}
}
