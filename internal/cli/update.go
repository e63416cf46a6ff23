package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newUpdateCmd(g *globals) *cobra.Command {
	r := &engine.ResourceOptions{}
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update the resource limits of one or more containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if _, err := e.Update(ref, r); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return errors.Join(errs...)
		},
	}
	addLimitFlags(cmd.Flags(), r)
	cmd.Flags().BoolVar(&g.explain, "explain", false, "print every cgroup write")
	return cmd
}
