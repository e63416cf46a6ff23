//go:build !cfs_lean

package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newPushCmd(g *globals) *cobra.Command {
	var rf registryFlags
	var quiet bool
	var digestFile string
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] IMAGE [DESTINATION]",
		Short: "Push an image to a registry",
		Long: `Push a stored image to a registry: to its own name, or to DESTINATION
([registry/]name[:tag]). Blobs go as stored and the manifest byte for byte, so
the image keeps its digest; blobs the registry has already are not sent.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, s, err := g.images()
			if err != nil {
				return err
			}
			dest := ""
			if len(args) == 2 {
				dest = args[1]
			}
			ui := newTransferUI(cmd.ErrOrStderr(), quiet)
			o, stop, err := rf.options(e, ui)
			if err != nil {
				return err
			}
			defer stop()
			res, err := s.Push(args[0], dest, o)
			ui.wait()
			if err != nil {
				return err
			}
			if digestFile != "" {
				if err := writeFileString(digestFile, res.Digest.String()); err != nil {
					return err
				}
			}
			if !quiet {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: digest: %s size: %d (%d blobs pushed, %s; %d already there)\n",
					res.Reference, res.Digest, res.Size, res.Uploaded, humanBytes(res.UploadBytes), res.Existed)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().IntVarP(&rf.jobs, "jobs", "j", 3, "blobs to upload at once")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the manifest digest")
	cmd.Flags().StringVar(&digestFile, "digestfile", "", "write the manifest digest to this file")
	return cmd
}

func writeFileString(path, s string) error {
	return os.WriteFile(path, []byte(s+"\n"), 0o644)
}
