// Package cli is the user's command line: one file per verb, each a thin
// adapter that parses flags, calls the engine and prints.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/supervisor"
	"github.com/cfs-org/cfs/internal/trace"
)

// Exit codes for errors of cfs itself (Docker's convention).
const exitEngine = 125

// exitError carries a container's exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type globals struct {
	// engineErrorCode is the exit code of an error of cfs itself: 125 for
	// run and create (Docker's), 1 for every other command.
	engineErrorCode int
	start           time.Time
	root            string
	explain         bool
	stdout          io.Writer
	stderr          io.Writer
}

func (g *globals) engine() (*engine.Engine, error) {
	var tr *trace.Tracer
	if g.explain {
		tr = trace.New(os.Stderr, "cfs")
		tr.SetStart(g.start)
	}
	return engine.New(g.root, tr)
}

func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "cfs",
		Short:         "cfs runs containers: namespaces, cgroups and layered filesystems, from scratch",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	def := os.Getenv("CFS_ROOT")
	if def == "" {
		def = engine.DefaultRoot
	}
	root.PersistentFlags().StringVar(&g.root, "root", def, "state directory (also $CFS_ROOT)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{errdefs.Invalidf("%v\nSee '%s --help'.", err, c.CommandPath())}
	})
	root.AddCommand(newRunCmd(g), newPsCmd(g), newRmCmd(g), newInspectCmd(g),
		newImagesCmd(g), newImportCmd(g), newRmiCmd(g),
		newPullCmd(g), newPushCmd(g), newLoginCmd(g), newLogoutCmd(g),
		newSaveCmd(g), newLoadCmd(g), newTagCmd(g), newHistoryCmd(g), newImageCmd(g), newCommitCmd(g), newExportCmd(g), newSystemCmd(g),
		newStatsCmd(g), newUpdateCmd(g), newPauseCmd(g), newUnpauseCmd(g),
		newCreateCmd(g), newStartCmd(g), newStopCmd(g), newKillCmd(g), newRestartCmd(g), newWaitCmd(g),
		newLogsCmd(g), newTopCmd(g), newRenameCmd(g), newExecCmd(g))
	root.AddCommand(newAttachCmd(g))
	markUsageErrors(root)
	return root
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	g := &globals{start: time.Now(), stdout: os.Stdout, stderr: os.Stderr, engineErrorCode: 1}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	return exitCode(g.stderr, err, g.engineErrorCode)
}

// exitCode is the one place errors become exit codes: a container's own
// status passes through; 126/127 when its program cannot run; 125 for
// everything cfs itself could not do.
func exitCode(w io.Writer, err error, engineCode int) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ie *runtime.InitError
	if errors.As(err, &ie) {
		fmt.Fprintf(w, "cfs: %s\n", ie.Msg)
		return ie.Code
	}
	var se *supervisor.Error
	if errors.As(err, &se) {
		fmt.Fprintf(w, "cfs: %s\n", se.Msg)
		if se.Code != exitEngine {
			return se.Code
		}
	} else {
		fmt.Fprintf(w, "cfs: %v\n", err)
	}
	var ue usageError
	if engineCode == 0 || errors.As(err, &ue) {
		return exitEngine
	}
	return engineCode
}

// usageError is a bad flag or argument count: exit 125 for every command,
// as Docker's CLI.
type usageError struct{ error }

func (u usageError) Unwrap() error { return u.error }

// markUsageErrors makes cmd's (and its children's) argument checks return
// usageErrors.
func markUsageErrors(cmd *cobra.Command) {
	if args := cmd.Args; args != nil {
		cmd.Args = func(c *cobra.Command, a []string) error {
			if err := args(c, a); err != nil {
				return usageError{fmt.Errorf("%w\nSee '%s --help'.", err, c.CommandPath())}
			}
			return nil
		}
	}
	for _, c := range cmd.Commands() {
		markUsageErrors(c)
	}
}

// eachContainer runs fn for every container reference, printing each one
// that succeeded (Docker's output for rm, stop, kill, pause, ...) and
// returning every failure.
func eachContainer(g *globals, cmd *cobra.Command, refs []string, fn func(e *engine.Engine, ref string) error) error {
	e, err := g.engine()
	if err != nil {
		return err
	}
	var errs []error
	for _, ref := range refs {
		if err := fn(e, ref); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(cmd.OutOrStdout(), ref)
	}
	return errors.Join(errs...)
}
