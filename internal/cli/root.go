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
	"github.com/cfs-org/cfs/internal/trace"
)

// Exit codes for errors of cfs itself (Docker's convention).
const exitEngine = 125

// exitError carries a container's exit code out of a command.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

type globals struct {
	start   time.Time
	root    string
	explain bool
	stdout  io.Writer
	stderr  io.Writer
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
		return errdefs.Invalidf("%v\nSee '%s --help'.", err, c.CommandPath())
	})
	root.AddCommand(newRunCmd(g), newPsCmd(g), newRmCmd(g), newInspectCmd(g),
		newImagesCmd(g), newImportCmd(g), newRmiCmd(g))
	return root
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	g := &globals{start: time.Now(), stdout: os.Stdout, stderr: os.Stderr}
	root := newRoot(g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	return exitCode(g.stderr, err)
}

// exitCode is the one place errors become exit codes: a container's own
// status passes through; 126/127 when its program cannot run; 125 for
// everything cfs itself could not do.
func exitCode(w io.Writer, err error) int {
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	var ie *runtime.InitError
	if errors.As(err, &ie) {
		fmt.Fprintf(w, "cfs: %s\n", ie.Msg)
		return ie.Code
	}
	fmt.Fprintf(w, "cfs: %v\n", err)
	return exitEngine
}
