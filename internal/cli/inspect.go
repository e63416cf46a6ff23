package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"text/template"

	"github.com/spf13/cobra"
)

func newInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect CONTAINER [CONTAINER...]",
		Short: "Show low-level information on containers as JSON",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var tmpl *template.Template
			if format != "" {
				if tmpl, err = template.New("inspect").Funcs(templateFuncs).Parse(format); err != nil {
					return usageError{fmt.Errorf("--format: %w", err)}
				}
			}
			var out []any
			var errs []error
			for _, ref := range args {
				v, err := e.Inspect(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if tmpl != nil {
					if err := tmpl.Execute(cmd.OutOrStdout(), v); err != nil {
						errs = append(errs, fmt.Errorf("--format: %w", err))
					}
					fmt.Fprintln(cmd.OutOrStdout())
					continue
				}
				out = append(out, v)
			}
			if tmpl != nil {
				return errors.Join(errs...)
			}
			if out == nil {
				out = []any{}
			}
			b, _ := json.MarshalIndent(out, "", "    ")
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "format the output with a Go template, e.g. '{{.State.Pid}}'")
	return cmd
}
