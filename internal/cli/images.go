package cli

import (
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/image"
)

func newImagesCmd(g *globals) *cobra.Command {
	var quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:   "images [OPTIONS]",
		Short: "List images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, s, err := g.images()
			if err != nil {
				return err
			}
			imgs, err := s.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, img := range imgs {
					fmt.Fprintln(out, imageID(img, noTrunc))
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, img := range imgs {
				repo, tag := "<none>", "<none>"
				if img.Name != "" {
					i := strings.LastIndex(img.Name, ":")
					repo, tag = img.Name[:i], img.Name[i+1:]
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s ago\t%s\n", repo, tag, imageID(img, noTrunc),
					humanDuration(time.Since(img.Created)), humanSize(img.Size))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	return cmd
}

func imageID(img *image.Image, full bool) string {
	if full {
		return img.ID.String()
	}
	h := img.ID.Encoded()
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// humanSize is Docker's units.HumanSize (decimal units, 3 significant digits).
func humanSize(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	f := float64(n)
	i := 0
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.3g%s", f, units[i])
}

func newRmiCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				if err := e.RemoveImage(ref, force); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Untagged: %s\n", ref)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove the image even if containers use it")
	return cmd
}
