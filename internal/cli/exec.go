package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newExecCmd(g *globals) *cobra.Command {
	o := &engine.ExecOptions{}
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a running container",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			o.Cmd = args[1:]
			code, err := e.Exec(args[0], o, engine.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	f.BoolVarP(&o.Detach, "detach", "d", false, "run the command in the background")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable")
	f.StringVarP(&o.User, "user", "u", "", "user: name|uid[:group|gid]")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	return cmd
}
