package cli

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/store"
)

func newPsCmd(g *globals) *cobra.Command {
	var all, quiet, noTrunc, latest, size bool
	var last int
	var filters []string
	var format string
	cmd := &cobra.Command{
		Use:     "ps [OPTIONS]",
		Aliases: []string{"ls"},
		Short:   "List containers",
		Long: "List containers, newest first (running ones unless -a).\n\n" +
			"--filter KEY=VALUE (repeatable; values of one key are alternatives, different keys must all match):\n" +
			"  id=ID, name=NAME (regular expressions), label=KEY or label=KEY=VALUE (every one must match),\n" +
			"  status=created|restarting|running|removing|paused|exited|dead, exited=CODE, ancestor=IMAGE\n" +
			"  (the image or one built on it), before=CONTAINER, since=CONTAINER, network=MODE, volume=PATH.\n\n" +
			"--format: json (one object per line), or a Go template over .ID .Image .Command .CreatedAt\n" +
			".RunningFor .Ports .State .Status .Size .Names .Labels (.Label \"KEY\") .Mounts .Networks\n" +
			".LocalVolumes; \"table TEMPLATE\" adds a header line and aligns tab-separated columns.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pf, err := parsePsFilters(filters)
			if err != nil {
				return err
			}
			var p *psPrinter
			if !quiet {
				if p, err = newPsPrinter(format, size); err != nil {
					return err
				}
			}
			e, err := g.engine()
			if err != nil {
				return err
			}
			q, err := resolvePsQuery(e, pf)
			if err != nil {
				return err
			}
			recs, err := e.Containers.List()
			if err != nil {
				return err
			}
			if latest {
				last = 1
			}
			// Docker: -n, -l and the status, before and since filters
			// include stopped containers.
			showAll := all || last > 0 || q.showsStopped()
			var shown []*store.Record
			for _, r := range recs {
				if last > 0 && len(shown) == last {
					break
				}
				r = e.Refresh(r)
				if (showAll || r.State.Running) && q.match(r) {
					shown = append(shown, r)
				}
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, r := range shown {
					fmt.Fprintln(out, shortID(r.ID, noTrunc))
				}
				return nil
			}
			sizeOf := func(*store.Record) psSize { return psSize{} }
			if p.UsesSize {
				sizeOf = containerSizes(e)
			}
			now := time.Now()
			rows := make([]*psRow, len(shown))
			for i, r := range shown {
				rows[i] = newPsRow(r, now, !noTrunc, sizeOf(r))
			}
			return p.print(out, rows)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringArrayVarP(&filters, "filter", "f", nil, "filter output based on conditions provided (KEY=VALUE)")
	f.StringVar(&format, "format", "", "output format: table (default), json, or a Go template")
	f.IntVarP(&last, "last", "n", -1, "show n last created containers (includes all states)")
	f.BoolVarP(&latest, "latest", "l", false, "show the latest created container (includes all states)")
	f.BoolVarP(&size, "size", "s", false, "display total file sizes")
	return cmd
}

// resolvePsQuery looks up the containers and images that filters name.
func resolvePsQuery(e *engine.Engine, pf psFilters) (*psQuery, error) {
	q := &psQuery{filters: pf}
	for _, ref := range pf["before"] {
		r, err := e.Containers.Get(ref)
		if err != nil {
			return nil, err
		}
		q.before = r
	}
	for _, ref := range pf["since"] {
		r, err := e.Containers.Get(ref)
		if err != nil {
			return nil, err
		}
		q.since = r
	}
	if vs := pf["ancestor"]; vs != nil {
		images, err := e.Images()
		if err != nil {
			return nil, err
		}
		list, err := images.List()
		if err != nil {
			return nil, err
		}
		q.ancestors = ancestorIDs(list, vs)
		q.ancestorNames = map[string]bool{}
		for _, v := range vs {
			q.ancestorNames[normalizeImageName(v)] = true
		}
	}
	return q, nil
}

// containerSizes returns a function giving a container's writable layer
// size and, with its image's, the virtual size.
func containerSizes(e *engine.Engine) func(*store.Record) psSize {
	imageSize := map[string]int64{}
	if images, err := e.Images(); err == nil {
		if list, err := images.List(); err == nil {
			for _, img := range list {
				imageSize[img.ID.String()] = img.Size
			}
		}
	}
	return func(r *store.Record) psSize {
		var rw int64
		filepath.WalkDir(filepath.Join(e.Containers.Dir(r.ID), "upper"), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					rw += info.Size()
				}
			}
			return nil
		})
		s := psSize{RW: rw}
		if n, ok := imageSize[r.ImageID]; ok {
			s.RootFS = rw + n
		}
		return s
	}
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
	case s.Status == store.StatusExited && s.OOMKilled:
		return fmt.Sprintf("Exited (%d) %s ago (OOMKilled)", s.ExitCode, humanDuration(now.Sub(s.FinishedAt)))
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
