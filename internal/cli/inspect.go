package cli

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/spf13/cobra"
)

func newInspectCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inspect CONTAINER [CONTAINER...]",
		Short: "Show low-level information on containers as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var out []any
			var errs []error
			for _, ref := range args {
				v, err := e.Inspect(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				out = append(out, v)
			}
			if out == nil {
				out = []any{}
			}
			b, _ := json.MarshalIndent(out, "", "    ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return errors.Join(errs...)
		},
	}
	return cmd
}
