package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/store"
)

func newPsCmd(g *globals) *cobra.Command {
	var all, quiet, noTrunc bool
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			recs, err := e.Containers.List()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, r := range recs {
					r = e.Refresh(r)
					if all || r.State.Running {
						fmt.Fprintln(out, shortID(r.ID, noTrunc))
					}
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 0, 3, ' ', 0)
			fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
			now := time.Now()
			for _, r := range recs {
				r = e.Refresh(r)
				if !all && !r.State.Running {
					continue
				}
				command := strings.Join(r.Command, " ")
				if !noTrunc && len(command) > 20 {
					command = command[:19] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%q\t%s ago\t%s\t\t%s\n", shortID(r.ID, noTrunc), r.Image, command,
					humanDuration(now.Sub(r.Created)), statusText(r, now), r.Name)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	cmd.Flags().BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	return cmd
}

func shortID(id string, full bool) string {
	if full || len(id) < 12 {
		return id
	}
	return id[:12]
}

// statusText is Docker's STATUS column.
func statusText(r *store.Record, now time.Time) string {
	s := r.State
	switch {
	case s.Running && s.Paused:
		return "Up " + humanDuration(now.Sub(s.StartedAt)) + " (Paused)"
	case s.Running:
		return "Up " + humanDuration(now.Sub(s.StartedAt))
	case s.Status == store.StatusExited:
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, humanDuration(now.Sub(s.FinishedAt)))
	case s.Status == store.StatusDead:
		return "Dead"
	default:
		return "Created"
	}
}

// humanDuration is Docker's units.HumanDuration.
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	}
	switch m := int(d.Minutes()); {
	case m == 1:
		return "About a minute"
	case m < 60:
		return fmt.Sprintf("%d minutes", m)
	}
	switch h := int(d.Round(time.Hour).Hours()); {
	case h == 1:
		return "About an hour"
	case h < 48:
		return fmt.Sprintf("%d hours", h)
	case h < 24*7*2:
		return fmt.Sprintf("%d days", h/24)
	case h < 24*30*2:
		return fmt.Sprintf("%d weeks", h/24/7)
	case h < 24*365*2:
		return fmt.Sprintf("%d months", h/24/30)
	default:
		return fmt.Sprintf("%d years", h/24/365)
	}
}
