// Package ocicli is cfs-runtime: runc's command line over the runtime
// package the engine uses. One file per verb; this file holds the root
// command, the global flags, logging and the mapping of errors to exit
// codes.
package ocicli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/trace"
)

// Version is what `cfs-runtime --version` reports.
const Version = "0.1.0"

// DefaultRoot is where container state lives unless --root says otherwise.
const DefaultRoot = "/run/cfs-runtime"

// globals are the flags every subcommand takes (before its name, as
// containerd and Podman pass them).
type globals struct {
	root          string
	logPath       string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	log           *logger
	// tracer prints every kernel step (cfs's --explain) when
	// CFS_RUNTIME_EXPLAIN is set.
	tracer *trace.Tracer
}

func (g *globals) state() runtime.StateRoot { return runtime.StateRoot(g.root) }

// exitError carries an exit code through cobra (run and exec report the
// container's status).
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs cfs-runtime with args (without argv[0]) and returns the exit
// code.
func Main(args []string) int {
	g := &globals{}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.Execute()
	if g.log == nil {
		g.log = newLogger(g)
	}
	defer g.log.close()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	g.log.errorf("%v", err)
	return 1
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "cfs-runtime",
		Short:         "cfs's OCI runtime, with runc's command line",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			g.log = newLogger(g)
			if os.Getenv("CFS_RUNTIME_EXPLAIN") != "" {
				g.tracer = trace.New(os.Stderr, "cfs-runtime")
			}
			if g.logFormat != "text" && g.logFormat != "json" {
				return fmt.Errorf("--log-format %q: must be text or json", g.logFormat)
			}
			g.log.debugf("%s %s", cmd.Name(), strings.Join(args, " "))
			return nil
		},
	}
	root.SetVersionTemplate(fmt.Sprintf("cfs-runtime version %s\nspec: %s\n", Version, "1.3.0"))
	f := root.PersistentFlags()
	f.StringVar(&g.root, "root", envOr("CFS_RUNTIME_ROOT", DefaultRoot), "directory for the state of containers")
	f.StringVar(&g.logPath, "log", "", "log file (default: stderr only)")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&g.debug, "debug", false, "log debug messages")
	f.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "cgroupsPath is a systemd \"slice:prefix:name\"; cfs maps it to a cgroupfs path (it does not talk to systemd)")
	f.StringVar(&g.rootless, "rootless", "auto", "accepted for compatibility; cfs-runtime needs root")
	f.Bool("criu", false, "accepted for compatibility; checkpointing is not supported")
	f.MarkHidden("criu")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return err })
	root.AddCommand(
		newCreateCmd(g), newStartCmd(g), newRunCmd(g), newStateCmd(g), newKillCmd(g), newDeleteCmd(g),
		newExecCmd(g), newPsCmd(g), newListCmd(g), newPauseCmd(g), newResumeCmd(g), newUpdateCmd(g),
		newEventsCmd(g), newFeaturesCmd(g), newSpecCmd(g), newExecWaitCmd(g),
	)
	return root
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// exactID is cobra's ExactArgs(1) with runc's message.
func exactID(cmd *cobra.Command, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("%q requires exactly 1 argument(s): the container ID", cmd.Name())
	}
	return nil
}

// logger writes errors to stderr and, with --log, every message to the
// log file: JSON lines ({"level","msg","time"}) with --log-format json,
// which is where containerd's shim and conmon look for a failed command's
// error.
type logger struct {
	g    *globals
	file io.WriteCloser
}

func newLogger(g *globals) *logger {
	l := &logger{g: g}
	if g.logPath != "" {
		if f, err := os.OpenFile(g.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_SYNC, 0o644); err == nil {
			l.file = f
		}
	}
	return l
}

func (l *logger) close() {
	if l.file != nil {
		l.file.Close()
	}
}

func (l *logger) write(level, msg string) {
	if l.file == nil {
		return
	}
	now := time.Now().Format(time.RFC3339Nano)
	if l.g.logFormat == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		l.file.Write(append(b, '\n'))
		return
	}
	fmt.Fprintf(l.file, "time=%q level=%s msg=%q\n", now, level, msg)
}

func (l *logger) errorf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "cfs-runtime: %s\n", msg)
	l.write("error", msg)
}

func (l *logger) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintf(os.Stderr, "cfs-runtime: warning: %s\n", msg)
	l.write("warning", msg)
}

func (l *logger) debugf(format string, args ...any) {
	if !l.g.debug {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if l.file == nil {
		fmt.Fprintf(os.Stderr, "cfs-runtime: debug: %s\n", msg)
	}
	l.write("debug", msg)
}
