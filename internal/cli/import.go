//go:build !cfs_lean

package cli

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
)

func newImportCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import FILE|- NAME[:TAG]",
		Short: "Import a root filesystem (tar or initramfs cpio; gzip, xz, lzma, zstd, bzip2) as an image",
		Long: `Import a root filesystem as a single-layer image. The format is detected from the
content, not the file name: tar or cpio (newc, as initramfs images are), plain or
compressed with gzip, xz, lzma, zstd or bzip2.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := image.NormalizeName(args[1]); err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return errdefs.Invalidf("import %s: %v", args[0], err)
				}
				defer f.Close()
				r = f
			}
			e, s, err := g.images()
			if err != nil {
				return err
			}
			img, err := s.Import(r, args[1], image.ImportOptions{Tracer: e.Tracer})
			if err != nil {
				return fmt.Errorf("import %s: %w", args[0], err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), img.ID.String())
			return nil
		},
	}
	return cmd
}
