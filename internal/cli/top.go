package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/store"
)

func newTopCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Long: "Display the processes of a container (host PIDs) in the columns of `ps -ef`: UID PID\n" +
			"PPID C STIME TTY TIME CMD, read from /proc. With ps OPTIONS the host's ps shows them\n" +
			"instead (`cfs top web aux`, `cfs top web -o pid,rss,comm`).",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			rec, err := e.Containers.Get(args[0])
			if err != nil {
				return err
			}
			if !e.Refresh(rec).State.Running {
				return errdefs.Conflictf("container %s is not running", args[0])
			}
			pids, err := containerPids(rec)
			if err != nil {
				return err
			}
			if len(args) > 1 {
				return hostPs(cmd.OutOrStdout(), args[1:], pids)
			}
			return printProcs(cmd.OutOrStdout(), readProcs("/proc", pids, time.Now()))
		},
	}
	// `cfs top web -o pid` passes -o to ps.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

// containerPids lists the processes in the container's cgroup, and in any
// cgroup it made below it, sorted.
func containerPids(rec *store.Record) ([]int, error) {
	var cc struct {
		Cgroup string `json:"CgroupPath"`
	}
	json.Unmarshal(rec.Extra, &cc)
	if cc.Cgroup == "" {
		cc.Cgroup = "/cfs/" + rec.ID
	}
	host, err := cgroups.DetectHost()
	if err != nil {
		return nil, err
	}
	m, err := cgroups.New(host, cc.Cgroup, nil)
	if err != nil {
		return nil, err
	}
	pids, err := m.Pids()
	if err != nil {
		return nil, fmt.Errorf("listing processes of container %s: %w", shortID(rec.ID, false), err)
	}
	// Pids reads the container's own cgroup; sub-cgroups the container
	// made hold the rest. Every hierarchy is walked: a container may lack
	// its directory in an optional one.
	seen := map[int]bool{}
	for _, p := range pids {
		seen[p] = true
	}
	for _, dir := range m.Paths() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() || p == dir {
				return nil
			}
			b, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(b)) {
				if n, err := strconv.Atoi(f); err == nil && !seen[n] {
					seen[n] = true
					pids = append(pids, n)
				}
			}
			return nil
		})
	}
	slices.Sort(pids)
	return pids, nil
}

// hostPs runs the host's ps with the user's options on the container's
// processes, as Docker does: `ps OPTIONS -q PIDS` where ps knows -q
// (procps), else `ps OPTIONS` filtered on its PID column (busybox).
func hostPs(w io.Writer, opts []string, pids []int) error {
	if _, err := exec.LookPath("ps"); err != nil {
		return errdefs.Unsupportedf("top with ps options needs ps on the host (procps): %v", err)
	}
	list := make([]string, len(pids))
	for i, p := range pids {
		list[i] = strconv.Itoa(p)
	}
	if len(pids) > 0 {
		out, err := exec.Command("ps", append(slices.Clone(opts), "-q", strings.Join(list, ","))...).Output()
		if err == nil {
			_, err = w.Write(out)
			return err
		}
	}
	out, err := exec.Command("ps", opts...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return errdefs.Invalidf("ps %s: %s", strings.Join(opts, " "), msg)
	}
	filtered, err := filterPsOutput(out, pids)
	if err != nil {
		return err
	}
	_, err = w.Write(filtered)
	return err
}

// filterPsOutput keeps ps's header and the lines whose PID column is one
// of pids.
func filterPsOutput(out []byte, pids []int) ([]byte, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		return nil, errdefs.Invalidf("couldn't find PID field in ps output")
	}
	var b bytes.Buffer
	b.WriteString(lines[0] + "\n")
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= col {
			continue
		}
		if p, err := strconv.Atoi(f[col]); err == nil && slices.Contains(pids, p) {
			b.WriteString(l + "\n")
		}
	}
	return b.Bytes(), nil
}

// proc is one line of top: the columns of `ps -ef`.
type proc struct {
	UID, PID, PPID, C, STime, TTY, Time, CMD string
}

func printProcs(w io.Writer, procs []proc) error {
	tw := tabwriter.NewWriter(w, 20, 1, 3, ' ', 0) // Docker's
	fmt.Fprintln(tw, "UID\tPID\tPPID\tC\tSTIME\tTTY\tTIME\tCMD")
	for _, p := range procs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.UID, p.PID, p.PPID, p.C, p.STime, p.TTY, p.Time, p.CMD)
	}
	return tw.Flush()
}

// clockTicks is USER_HZ, the unit of /proc times: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// readProcs reads pids' columns from procRoot (/proc; a fixture in tests).
// Processes that exit meanwhile are left out.
func readProcs(procRoot string, pids []int, now time.Time) []proc {
	boot, uptime := bootTime(procRoot)
	users := hostUsers("/etc/passwd")
	var out []proc
	for _, pid := range pids {
		dir := filepath.Join(procRoot, strconv.Itoa(pid))
		stat, err := os.ReadFile(filepath.Join(dir, "stat"))
		if err != nil {
			continue
		}
		st, ok := parseProcStat(string(stat))
		if !ok {
			continue
		}
		p := proc{PID: strconv.Itoa(pid), PPID: strconv.Itoa(st.ppid), TTY: ttyName(st.ttyNr)}
		uid := statusUID(filepath.Join(dir, "status"))
		p.UID = uid
		if name, ok := users[uid]; ok {
			p.UID = name
		}
		cpu := st.utime + st.stime
		p.Time = cpuTime(cpu / clockTicks)
		// ps's C: CPU time over time alive, in percent, at most 99.
		if alive := uptime - float64(st.start)/clockTicks; alive > 0 {
			p.C = strconv.Itoa(min(int(float64(cpu)/clockTicks*100/alive), 99))
		} else {
			p.C = "0"
		}
		p.STime = startTime(boot.Add(time.Duration(st.start)*time.Second/clockTicks), now)
		cmdline, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		if args := strings.TrimRight(string(cmdline), "\x00"); args != "" {
			p.CMD = strings.ReplaceAll(args, "\x00", " ")
		} else {
			p.CMD = "[" + st.comm + "]" // a zombie
		}
		out = append(out, p)
	}
	return out
}

type procStat struct {
	comm                string
	ppid, ttyNr         int
	utime, stime, start uint64
}

// parseProcStat reads /proc/PID/stat (proc(5)); comm may hold spaces and
// parentheses, so fields are counted from its last ")".
func parseProcStat(s string) (procStat, bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	f := strings.Fields(s[end+1:]) // f[0] is field 3, state
	if len(f) < 20 {
		return procStat{}, false
	}
	st := procStat{comm: s[open+1 : end]}
	st.ppid, _ = strconv.Atoi(f[1])
	st.ttyNr, _ = strconv.Atoi(f[4])
	st.utime, _ = strconv.ParseUint(f[11], 10, 64)
	st.stime, _ = strconv.ParseUint(f[12], 10, 64)
	st.start, _ = strconv.ParseUint(f[19], 10, 64)
	return st, true
}

// statusUID is the effective uid from /proc/PID/status, as ps -f shows.
func statusUID(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Uid:"); ok {
			if ids := strings.Fields(rest); len(ids) > 1 {
				return ids[1]
			}
		}
	}
	return "?"
}

// hostUsers maps uids to names from the host's passwd file, as the host's
// ps does (a remapped container's uids have no name there).
func hostUsers(path string) map[string]string {
	b, _ := os.ReadFile(path)
	users := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 2 {
			if _, dup := users[f[2]]; !dup {
				users[f[2]] = f[0]
			}
		}
	}
	return users
}

// bootTime reads the boot time (/proc/stat btime) and the uptime.
func bootTime(procRoot string) (time.Time, float64) {
	var boot time.Time
	if b, err := os.ReadFile(filepath.Join(procRoot, "stat")); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(l, "btime "); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(rest), 10, 64)
				boot = time.Unix(n, 0)
			}
		}
	}
	var up float64
	if b, err := os.ReadFile(filepath.Join(procRoot, "uptime")); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			up, _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return boot, up
}

// ttyName decodes a tty_nr device number as ps names it.
func ttyName(nr int) string {
	major, minor := (nr>>8)&0xfff, (nr&0xff)|((nr>>12)&0xfff00)
	switch {
	case nr == 0:
		return "?"
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", (major-136)*256+minor)
	case major == 4 && minor < 64:
		return fmt.Sprintf("tty%d", minor)
	case major == 4:
		return fmt.Sprintf("ttyS%d", minor-64)
	case major == 5 && minor == 1:
		return "console"
	default:
		return fmt.Sprintf("%d,%d", major, minor)
	}
}

// cpuTime is ps's TIME: [DD-]HH:MM:SS.
func cpuTime(secs uint64) string {
	d, h, m, s := secs/86400, secs/3600%24, secs/60%60, secs%60
	if d > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", d, h, m, s)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, s)
}

// startTime is ps's STIME: the time of day within the last day, the date
// within the year, else the year.
func startTime(t, now time.Time) string {
	t = t.In(now.Location())
	switch {
	case now.Sub(t) < 24*time.Hour:
		return t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("Jan02")
	default:
		return t.Format("2006")
	}
}
