package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newHistoryCmd(g *globals) *cobra.Command {
	var noTrunc, quiet, human bool
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image, newest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, s, err := g.images()
			if err != nil {
				return err
			}
			d, err := s.Inspect(args[0])
			if err != nil {
				return err
			}
			type row struct {
				created   *time.Time
				createdBy string
				size      int64
				comment   string
			}
			// History entries that are not empty_layer own the layers, in order.
			var rows []row
			li := 0
			for _, h := range d.Config.History {
				r := row{created: h.Created, createdBy: h.CreatedBy, comment: h.Comment}
				if !h.EmptyLayer && li < len(d.Layers) {
					r.size = d.Layers[li].Size
					li++
				}
				rows = append(rows, r)
			}
			for ; li < len(d.Layers); li++ {
				rows = append(rows, row{size: d.Layers[li].Size})
			}
			out := cmd.OutOrStdout()
			if quiet {
				for i := range rows {
					if i == len(rows)-1 {
						fmt.Fprintln(out, imageID(d.Image, noTrunc))
					} else {
						fmt.Fprintln(out, "<missing>")
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for i := len(rows) - 1; i >= 0; i-- {
				r := rows[i]
				id := "<missing>"
				if i == len(rows)-1 {
					id = imageID(d.Image, noTrunc)
				}
				created := "N/A"
				if r.created != nil {
					if human {
						created = humanDuration(time.Since(*r.created)) + " ago"
					} else {
						created = r.created.Format(time.RFC3339)
					}
				}
				by := strings.Join(strings.Fields(r.createdBy), " ")
				if !noTrunc && len(by) > 45 {
					by = by[:44] + "…"
				}
				size := humanSize(r.size)
				if !human {
					size = fmt.Sprint(r.size)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, created, by, size, r.comment)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	cmd.Flags().BoolVarP(&human, "human", "H", true, "sizes and dates in human-readable form")
	return cmd
}
