package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/errdefs"
)

// statsInterval is how often `cfs stats` refreshes; the first frame comes
// after statsFirst, long enough for a CPU % to mean something.
const (
	statsInterval = time.Second
	statsFirst    = 500 * time.Millisecond
)

func newStatsCmd(g *globals) *cobra.Command {
	var noStream, all, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of containers' resource usage",
		Long: "Display a live stream of containers' resource usage: CPU % (100% is one CPU),\n" +
			"memory use and limit, block I/O and the number of tasks. Without CONTAINER,\n" +
			"every running container. --format json prints one JSON object per container\n" +
			"and line; any other value is a Go template over .Container .Name .ID\n" +
			".CPUPerc .MemUsage .MemPerc .NetIO .BlockIO .PIDs (\"table TEMPLATE\" adds headers).",
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			p, err := newStatsPrinter(format, noTrunc)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			tty := false
			if f, ok := out.(*os.File); ok && !noStream {
				tty = term.IsTerminal(int(f.Fd()))
			}
			prev := map[string]*engine.StatsSample{}
			wait := statsFirst
			for first := true; ; first = false {
				samples, err := sampleStats(e, args, all)
				if err != nil {
					return err
				}
				if !first {
					var buf bytes.Buffer
					if tty {
						buf.WriteString("\033[2J\033[H") // clear, home: refresh in place
					}
					rows := make([]statsRow, len(samples))
					for i, s := range samples {
						rows[i] = makeStatsRow(prev[s.ID], s, noTrunc)
					}
					if err := p.print(&buf, rows); err != nil {
						return err
					}
					if _, err := out.Write(buf.Bytes()); err != nil {
						return nil // the reader went away (| head)
					}
					if noStream {
						return nil
					}
				}
				next := map[string]*engine.StatsSample{}
				for _, s := range samples {
					next[s.ID] = s
				}
				prev = next
				time.Sleep(wait)
				wait = statsInterval
			}
		},
	}
	f := cmd.Flags()
	f.BoolVar(&noStream, "no-stream", false, "print one frame and exit")
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "output format: table (default), json, or a Go template")
	return cmd
}

// sampleStats reads the named containers, or every running one (every one
// with all).
func sampleStats(e *engine.Engine, refs []string, all bool) ([]*engine.StatsSample, error) {
	if len(refs) == 0 {
		recs, err := e.RunningContainers()
		if all {
			recs, err = e.Containers.List()
		}
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			refs = append(refs, r.ID)
		}
		var out []*engine.StatsSample
		for _, ref := range refs {
			// A container may exit between the listing and the read.
			if s, err := e.Stats(ref); err == nil {
				out = append(out, s)
			}
		}
		return out, nil
	}
	out := make([]*engine.StatsSample, 0, len(refs))
	for _, ref := range refs {
		s, err := e.Stats(ref)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// statsRow is one line of `cfs stats`, in docker stats' field names (its
// --format templates work unchanged).
type statsRow struct {
	Container string `json:"Container"`
	Name      string `json:"Name"`
	ID        string `json:"ID"`
	CPUPerc   string `json:"CPUPerc"`
	MemUsage  string `json:"MemUsage"`
	MemPerc   string `json:"MemPerc"`
	NetIO     string `json:"NetIO"`
	BlockIO   string `json:"BlockIO"`
	PIDs      string `json:"PIDs"`
}

var statsHeader = statsRow{Container: "CONTAINER", Name: "NAME", ID: "CONTAINER ID", CPUPerc: "CPU %",
	MemUsage: "MEM USAGE / LIMIT", MemPerc: "MEM %", NetIO: "NET I/O", BlockIO: "BLOCK I/O", PIDs: "PIDS"}

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.BlockIO}}\t{{.PIDs}}"

func makeStatsRow(prev, s *engine.StatsSample, noTrunc bool) statsRow {
	r := statsRow{Container: shortID(s.ID, noTrunc), Name: s.Name, ID: shortID(s.ID, noTrunc), NetIO: "--"}
	r.CPUPerc = fmt.Sprintf("%.2f%%", engine.CPUPercent(prev, s))
	r.MemUsage = bytesSize(s.MemUsage) + " / " + bytesSize(s.MemLimit)
	r.MemPerc = fmt.Sprintf("%.2f%%", s.MemPercent())
	r.BlockIO = decimalSize(s.BlockRead) + " / " + decimalSize(s.BlockWrite)
	r.PIDs = fmt.Sprint(s.Pids)
	return r
}

type statsPrinter struct {
	json  bool
	table bool
	tmpl  *template.Template
}

func newStatsPrinter(format string, noTrunc bool) (*statsPrinter, error) {
	p := &statsPrinter{}
	switch format = strings.TrimSpace(format); {
	case format == "json":
		p.json = true
		return p, nil
	case format == "" || format == "table":
		format = defaultStatsFormat
	}
	if rest, ok := strings.CutPrefix(format, "table"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
		p.table, format = true, strings.TrimLeft(rest, " ")
	}
	// Docker's templates write tabs as \t.
	format = strings.ReplaceAll(format, `\t`, "\t")
	t, err := template.New("stats").Funcs(template.FuncMap{
		"json":  func(v any) string { b, _ := json.Marshal(v); return string(b) },
		"upper": strings.ToUpper, "lower": strings.ToLower,
	}).Parse(format)
	if err != nil {
		return nil, errdefs.Invalidf("--format: %v", err)
	}
	p.tmpl = t
	return p, nil
}

func (p *statsPrinter) print(w io.Writer, rows []statsRow) error {
	if p.json {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	out := w
	var tw *tabwriter.Writer
	if p.table {
		tw = tabwriter.NewWriter(w, 0, 0, 3, ' ', 0)
		out = tw
		if err := p.tmpl.Execute(out, statsHeader); err != nil {
			return errdefs.Invalidf("--format: %v", err)
		}
		fmt.Fprintln(out)
	}
	for _, r := range rows {
		if err := p.tmpl.Execute(out, r); err != nil {
			return errdefs.Invalidf("--format: %v", err)
		}
		fmt.Fprintln(out)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

// bytesSize is go-units' BytesSize: binary units, 4 significant digits.
func bytesSize(n uint64) string {
	return unitSize(float64(n), 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}, 4)
}

// decimalSize is go-units' HumanSizeWithPrecision(n, 3): decimal units.
func decimalSize(n uint64) string {
	return unitSize(float64(n), 1000, []string{"B", "kB", "MB", "GB", "TB", "PB"}, 3)
}

func unitSize(v, base float64, units []string, prec int) string {
	i := 0
	for v >= base && i < len(units)-1 {
		v /= base
		i++
	}
	return fmt.Sprintf("%.*g%s", prec, v, units[i])
}
