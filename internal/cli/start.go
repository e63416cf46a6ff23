package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newStartCmd(g *globals) *cobra.Command {
	var attach bool
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more created or stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			if attach && len(args) > 1 {
				return usageError{errors.New("you cannot start and attach multiple containers at once")}
			}
			var errs []error
			since := time.Now()
			for _, ref := range args {
				rec, err := e.Start(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if attach {
					return followUntilExit(cmd, e, rec.ID, since)
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach to the container's output and exit with its status")
	return cmd
}
