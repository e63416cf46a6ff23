//go:build !cfs_lean

package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
)

func newSaveCmd(g *globals) *cobra.Command {
	var output, format string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save images to an archive (docker-archive or oci-archive)",
		Long: `Save images to a tar archive, on stdout or in a file (-o). docker-archive (the
default) is what docker save writes; oci-archive is an OCI image layout that
keeps every blob as stored, so the images keep their digests.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, s, err := g.images()
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if output == "" || output == "-" {
				if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
					return errdefs.Invalidf("refusing to write an archive to a terminal: use -o FILE or redirect stdout")
				}
				return s.Save(w, args, format)
			}
			// Written next to the target and renamed: a failed save
			// leaves no truncated archive.
			tmp, err := os.CreateTemp(dirOf(output), ".cfs-save-")
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			defer os.Remove(tmp.Name())
			if err := s.Save(tmp, args, format); err != nil {
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
	cmd.Flags().StringVar(&format, "format", image.FormatDockerArchive, "docker-archive or oci-archive")
	return cmd
}
