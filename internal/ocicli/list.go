package ocicli

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newListCmd(g *globals) *cobra.Command {
	var format string
	var quiet bool
	cmd := &cobra.Command{
		Use:     "list [--format table|json] [-q]",
		Aliases: []string{"ls"},
		Short:   "list the containers under --root",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := g.state()
			ids, err := root.List()
			if err != nil {
				return err
			}
			var out []stateJSON
			for _, id := range ids {
				st, err := root.Load(id)
				if err != nil {
					continue
				}
				out = append(out, toStateJSON(st))
			}
			switch {
			case quiet:
				for _, s := range out {
					fmt.Println(s.ID)
				}
			case format == "json":
				if out == nil {
					out = []stateJSON{}
				}
				b, _ := json.Marshal(out)
				os.Stdout.Write(append(b, '\n'))
			case format == "table":
				w := tabwriter.NewWriter(os.Stdout, 12, 1, 3, ' ', 0)
				fmt.Fprint(w, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n")
				for _, s := range out {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.ID, strconv.Itoa(s.Pid), s.Status, s.Bundle,
						s.Created.Format(time.RFC3339Nano), s.Owner)
				}
				w.Flush()
			default:
				return fmt.Errorf("--format %q: table or json", format)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the IDs")
	return cmd
}
