package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

// newSystemCmd is `cfs system ...`.
func newSystemCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "system", Short: "Manage cfs", Args: cobra.NoArgs}
	cmd.AddCommand(newSystemDfCmd(g), newSystemBootCmd(g), newSystemUnitCmd(g))
	return cmd
}

func newSystemDfCmd(g *globals) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show the disk space images and containers use",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			du, err := e.DiskUsage()
			if err != nil {
				return err
			}
			var cSize, cReclaim int64
			active := 0
			for _, c := range du.Containers {
				cSize += c.Size
				if c.Running {
					active++
				} else {
					cReclaim += c.Size
				}
			}
			pct := func(part, whole int64) string {
				if whole == 0 {
					return "0%"
				}
				return fmt.Sprintf("%d%%", part*100/whole)
			}
			out := cmd.OutOrStdout()
			tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE")
			u := du.Images
			fmt.Fprintf(tw, "Images\t%d\t%d\t%s\t%s (%s)\n", u.Images, u.Active, humanSize(u.Size), humanSize(u.Reclaimable), pct(u.Reclaimable, u.Size))
			fmt.Fprintf(tw, "Containers\t%d\t%d\t%s\t%s (%s)\n", len(du.Containers), active, humanSize(cSize), humanSize(cReclaim), pct(cReclaim, cSize))
			if err := tw.Flush(); err != nil || !verbose {
				return err
			}
			fmt.Fprintln(out, "\nImages space usage:")
			tw = tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE ID\tNAMES\tSIZE\tSHARED SIZE\tUNIQUE SIZE\tIN USE")
			for _, iu := range u.PerImage {
				names := strings.Join(iu.Names, ",")
				if names == "" {
					names = "<none>"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%v\n", iu.ID.Encoded()[:12], names, humanSize(iu.Size), humanSize(iu.SharedSize), humanSize(iu.Size-iu.SharedSize), iu.InUse)
			}
			tw.Flush()
			fmt.Fprintln(out, "\nContainers space usage:")
			tw = tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tSIZE\tRUNNING\tNAME")
			for _, c := range du.Containers {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%v\t%s\n", c.ID[:12], c.Image, humanSize(c.Size), c.Running, c.Name)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show per-image and per-container usage")
	return cmd
}
