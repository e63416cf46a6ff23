//go:build !cfs_lean

package cli

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
)

func newLoadCmd(g *globals) *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS] [NAME[:TAG]]",
		Short: "Load images from an archive (docker-archive, oci-archive or an OCI layout directory)",
		Long: `Load the images of an archive, from stdin or a file (-i): a docker-archive
(docker save, podman save), an oci-archive, or either compressed; -i also takes
an OCI image layout directory. NAME names the image when the archive holds one.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var r io.Reader = cmd.InOrStdin()
			if input != "" && input != "-" {
				st, err := os.Stat(input)
				if err != nil {
					return errdefs.Invalidf("load %s: %v", input, err)
				}
				if st.IsDir() {
					pr, pw := io.Pipe()
					go func() { pw.CloseWithError(tarDir(pw, input)) }()
					defer pr.Close()
					r = pr
				} else {
					f, err := os.Open(input)
					if err != nil {
						return errdefs.Invalidf("load %s: %v", input, err)
					}
					defer f.Close()
					r = f
				}
			}
			e, s, err := g.images()
			if err != nil {
				return err
			}
			opts := image.LoadOptions{Tracer: e.Tracer}
			if len(args) == 1 {
				opts.Name = args[0]
			}
			imgs, err := s.LoadArchive(r, opts)
			if err != nil {
				return err
			}
			for _, img := range imgs {
				switch {
				case quiet:
					fmt.Fprintln(cmd.OutOrStdout(), img.ID)
				case img.Name != "":
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image: %s\n", img.Name)
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "Loaded image ID: %s\n", img.ID)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "read from this file or OCI layout directory instead of stdin")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only image IDs")
	return cmd
}

// tarDir streams the regular files and directories under dir as a tar
// (an OCI layout directory becomes what an oci-archive holds).
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() {
			return nil
		}
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.IsDir() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
