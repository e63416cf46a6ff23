// Package cli is the user's command line: one file per verb, each a thin
// adapter that parses flags, calls the engine and prints.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
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

// images opens the engine and its image store.
func (g *globals) images() (*engine.Engine, *image.Store, error) {
	e, err := g.engine()
	if err != nil {
		return nil, nil, err
	}
	s, err := e.Images()
	return e, s, err
}

func (g *globals) engine() (*engine.Engine, error) {
	var tr *trace.Tracer
	if g.explain {
		tr = trace.New(os.Stderr, "cfs")
		tr.SetStart(g.start)
	}
	return engine.New(g.root, tr)
}

// commands are the top-level commands' constructors by the words that
// invoke them (name and aliases), with transferCommands. Main builds only
// the command a command line names: building every command with its flags
// costs about 0.25 ms on each cfs invocation. Help, completion, global
// flags first and unknown words get the whole tree. TestCommandsRegistry
// keeps these maps, the commands' own names and helpOrder in step.
var commands = map[string]func(*globals) *cobra.Command{
	"run": newRunCmd, "ps": newPsCmd, "ls": newPsCmd, "rm": newRmCmd, "inspect": newInspectCmd,
	"images": newImagesCmd, "rmi": newRmiCmd, "tag": newTagCmd, "history": newHistoryCmd,
	"export": newExportCmd, "system": newSystemCmd, "image": newImageCmd,
	"stats": newStatsCmd, "update": newUpdateCmd, "pause": newPauseCmd, "unpause": newUnpauseCmd,
	"create": newCreateCmd, "start": newStartCmd, "stop": newStopCmd, "kill": newKillCmd, "restart": newRestartCmd,
	"wait": newWaitCmd, "logs": newLogsCmd, "top": newTopCmd, "rename": newRenameCmd, "exec": newExecCmd,
	"attach": newAttachCmd, "version": newVersionCmd,
}

// transferShort describes the commands that move images in and out of the
// store (transferCommands): registries, archives, compression. The full
// cfs builds them (transfer_full.go); the lean front end that make builds
// as bin/cfs hands them to the full cfs it carries (transfer_lean.go), and
// lists them with these words. TestTransferShort keeps them in step.
var transferShort = map[string]string{
	"pull":   "Pull an image from a registry",
	"push":   "Push an image to a registry",
	"login":  "Log in to a registry",
	"logout": "Forget the credentials of a registry",
	"import": "Import a root filesystem (tar or initramfs cpio; gzip, xz, lzma, zstd, bzip2) as an image",
	"save":   "Save images to an archive (docker-archive or oci-archive)",
	"load":   "Load images from an archive (docker-archive, oci-archive or an OCI layout directory)",
	"commit": "Make an image of a container's changes",
}

// helpOrder is every top-level command's name, in help order.
var helpOrder = []string{
	"run", "ps", "rm", "inspect",
	"images", "import", "rmi",
	"pull", "push", "login", "logout",
	"save", "load", "tag", "history", "image", "commit", "export", "system",
	"stats", "update", "pause", "unpause",
	"create", "start", "stop", "kill", "restart", "wait",
	"logs", "top", "rename", "exec", "attach", "version",
}

// command returns the constructor of the command word names, if any.
func command(word string) (func(*globals) *cobra.Command, bool) {
	if f, ok := commands[word]; ok {
		return f, true
	}
	f, ok := transferCommands[word]
	return f, ok
}

func newRoot(g *globals, only ...func(*globals) *cobra.Command) *cobra.Command {
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
	if len(only) == 0 {
		for _, w := range helpOrder {
			f, _ := command(w)
			only = append(only, f)
		}
		// --version (Docker's "cfs version X"); set only with the
		// whole tree, which every flag before a command gets.
		root.Version = version()
		root.SetVersionTemplate("cfs version {{.Version}}\n")
	}
	for _, f := range only {
		root.AddCommand(f(g))
	}
	markUsageErrors(root)
	return root
}

// Main runs the command line and returns the process exit code.
func Main(args []string) int {
	g := &globals{start: time.Now(), stdout: os.Stdout, stderr: os.Stderr, engineErrorCode: 1}
	var root *cobra.Command
	if f, ok := command(firstWord(args)); ok {
		root = newRoot(g, f)
	} else {
		root = newRoot(g)
	}
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	return exitCode(g.stderr, err, g.engineErrorCode)
}

// firstWord is args[0] when it is a word, not a flag ("" otherwise: global
// flags before the command get the whole tree).
func firstWord(args []string) string {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return ""
	}
	return args[0]
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
