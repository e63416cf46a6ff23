package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type command struct {
	label string
	argv  []string // argv[0] resolved to a path; "{n}" is replaced per run
	wall  []time.Duration
	cpu   []time.Duration // user+sys of the process and the children it reaped
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func timeMain(args []string) error {
	fs := flag.NewFlagSet("time", flag.ExitOnError)
	runs := fs.Int("runs", 100, "timed runs per command")
	warmup := fs.Int("warmup", 5, "untimed runs per command first")
	ratio := fs.String("ratio", "", "comma-separated labels to give ratio columns against")
	var shorten listFlag
	fs.Var(&shorten, "shorten", "OLD=NEW: replace OLD by NEW in the printed commands (repeatable)")
	fs.Parse(args)
	if fs.NArg() == 0 || *runs < 1 {
		return fmt.Errorf("time: want runs >= 1 and at least one 'label=command'")
	}
	var cmds []*command
	byLabel := map[string]*command{}
	for _, a := range fs.Args() {
		label, line, ok := strings.Cut(a, "=")
		argv := strings.Fields(line)
		if !ok || label == "" || len(argv) == 0 {
			return fmt.Errorf("time: %q: want label=command", a)
		}
		p, err := exec.LookPath(argv[0])
		if err != nil {
			return err
		}
		argv[0] = p
		c := &command{label: label, argv: argv}
		cmds = append(cmds, c)
		byLabel[label] = c
	}
	var bases []*command
	if *ratio != "" {
		for _, l := range strings.Split(*ratio, ",") {
			c := byLabel[l]
			if c == nil {
				return fmt.Errorf("time: -ratio %q: no such command label", l)
			}
			bases = append(bases, c)
		}
	}

	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	errf, err := os.CreateTemp("", "runbench-stderr-*")
	if err != nil {
		return err
	}
	os.Remove(errf.Name())
	defer errf.Close()

	// A signal stops us between runs: the running command finishes first,
	// so nothing is left behind.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)

	n := 0
	for round := 0; round < *warmup+*runs; round++ {
		for j := range cmds {
			select {
			case s := <-sig:
				return fmt.Errorf("stopped by %v", s)
			default:
			}
			c := cmds[(round+j)%len(cmds)]
			n++
			wall, cpu, err := runOnce(c, n, devnull, errf)
			if err != nil {
				return err
			}
			if round >= *warmup {
				c.wall = append(c.wall, wall)
				c.cpu = append(c.cpu, cpu)
			}
		}
	}

	var b strings.Builder
	b.WriteString("| command | median ms | p90 ms | CPU ms |")
	for _, c := range bases {
		fmt.Fprintf(&b, " × %s |", c.label)
	}
	b.WriteString("\n|---|--:|--:|--:|")
	for range bases {
		b.WriteString("--:|")
	}
	b.WriteString("\n")
	for _, c := range cmds {
		med := quantile(c.wall, 0.5)
		fmt.Fprintf(&b, "| %s: `%s` | %.2f | %.2f | %.2f |", c.label, printable(c.argv, shorten),
			ms(med), ms(quantile(c.wall, 0.9)), ms(quantile(c.cpu, 0.5)))
		for _, base := range bases {
			fmt.Fprintf(&b, " %.2f |", float64(med)/float64(quantile(base.wall, 0.5)))
		}
		b.WriteString("\n")
	}
	fmt.Print(b.String())
	return nil
}

// runOnce runs c once with stdin and stdout on /dev/null and stderr kept
// in errf for the error message. The clock covers fork, exec and wait.
func runOnce(c *command, n int, devnull, errf *os.File) (wall, cpu time.Duration, err error) {
	argv := make([]string, len(c.argv))
	for i, a := range c.argv {
		argv[i] = strings.ReplaceAll(a, "{n}", strconv.Itoa(n))
	}
	if err := errf.Truncate(0); err != nil {
		return 0, 0, err
	}
	if _, err := errf.Seek(0, 0); err != nil {
		return 0, 0, err
	}
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Stdin: devnull, Stdout: devnull, Stderr: errf}
	t0 := time.Now()
	err = cmd.Start()
	if err == nil {
		err = cmd.Wait()
	}
	wall = time.Since(t0)
	if err != nil {
		msg, _ := os.ReadFile("/proc/self/fd/" + strconv.Itoa(int(errf.Fd())))
		return 0, 0, fmt.Errorf("%s: %s: %w: %s", c.label, strings.Join(argv, " "), err, strings.TrimSpace(string(msg)))
	}
	ps := cmd.ProcessState
	return wall, ps.UserTime() + ps.SystemTime(), nil
}

// quantile interpolates linearly between the closest ranks.
func quantile(d []time.Duration, q float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	pos := q * float64(len(s)-1)
	i := int(pos)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + time.Duration((pos-float64(i))*float64(s[i+1]-s[i]))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func printable(argv []string, shorten []string) string {
	a := append([]string(nil), argv...)
	for i := range a {
		if i == 0 {
			a[i] = a[i][strings.LastIndex(a[i], "/")+1:]
		}
		for _, s := range shorten {
			if o, nw, ok := strings.Cut(s, "="); ok && o != "" {
				a[i] = strings.ReplaceAll(a[i], o, nw)
			}
		}
	}
	return strings.Join(a, " ")
}
