package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func newExportCmd(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Write a container's file system as a tar archive",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if output == "" || output == "-" {
				if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errdefs.Invalidf("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
				}
				return e.Export(args[0], w)
			}
			tmp, err := os.CreateTemp(dirOf(output), ".cfs-export-")
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			defer os.Remove(tmp.Name())
			if err := e.Export(args[0], tmp); err != nil {
				tmp.Close()
				return err
			}
			if err := tmp.Close(); err != nil {
				return err
			}
			os.Chmod(tmp.Name(), 0o644)
			return os.Rename(tmp.Name(), output)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "write to this file instead of stdout")
	return cmd
}

// dirOf is the directory of path p ("." for a bare name).
func dirOf(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			if i == 0 {
				return "/"
			}
			return p[:i]
		}
	}
	return "."
}
