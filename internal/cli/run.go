package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/errdefs"
)

func newRunCmd(g *globals) *cobra.Command {
	o := &engine.RunOptions{}
	var entrypoint string
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in a new container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := containerEngine(g, "run")
			if err != nil {
				return err
			}
			o.Image, o.Cmd = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				o.Entrypoint = &entrypoint
			}
			if o.Detach {
				id, err := e.RunDetachedVia(o)
				if err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			code, err := e.Run(o, engine.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
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
	f.SetInterspersed(false) // flags after IMAGE belong to the command
	f.BoolVarP(&o.Detach, "detach", "d", false, "run in the background and print the container ID")
	addCreateFlags(g, f, o, &entrypoint)
	return cmd
}

func newCreateCmd(g *globals) *cobra.Command {
	o := &engine.RunOptions{}
	var entrypoint string
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND [ARG...]]",
		Short: "Create a container without starting it",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := containerEngine(g, "create")
			if err != nil {
				return err
			}
			o.Image, o.Cmd = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				o.Entrypoint = &entrypoint
			}
			rec, err := e.Create(o)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), rec.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	addCreateFlags(g, f, o, &entrypoint)
	return cmd
}

// containerEngine checks for root and opens the engine for a command that
// creates containers (whose failures exit 125, as Docker's run and create).
func containerEngine(g *globals, verb string) (*engine.Engine, error) {
	g.engineErrorCode = exitEngine
	if os.Geteuid() != 0 {
		return nil, errdefs.Unsupportedf("cfs %s needs root (namespaces, cgroups and mounts): try sudo", verb)
	}
	return g.engine()
}

// addCreateFlags registers the flags run and create share (Docker's names).
func addCreateFlags(g *globals, f *pflag.FlagSet, o *engine.RunOptions, entrypoint *string) {
	f.BoolVar(&o.Remove, "rm", false, "remove the container when it exits")
	f.StringVar(&o.Name, "name", "", "assign a name to the container")
	f.BoolVarP(&o.Interactive, "interactive", "i", false, "keep stdin open")
	f.BoolVarP(&o.TTY, "tty", "t", false, "allocate a pseudo-terminal")
	f.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable (KEY=VALUE, or KEY to pass the caller's)")
	f.StringArrayVar(&o.EnvFiles, "env-file", nil, "read environment variables from a file")
	f.StringVarP(&o.Workdir, "workdir", "w", "", "working directory inside the container")
	f.StringVarP(&o.User, "user", "u", "", "user: name|uid[:group|gid]")
	f.StringVar(&o.Hostname, "hostname", "", "container host name (default: the ID's first 12 characters)")
	f.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind mount /host/path:/container/path[:ro]")
	f.StringArrayVar(&o.Tmpfs, "tmpfs", nil, "mount a tmpfs: /container/path[:options]")
	f.BoolVar(&o.ReadOnly, "read-only", false, "mount the root filesystem read-only")
	f.StringVar(entrypoint, "entrypoint", "", "override the image's entrypoint")
	f.StringVar(&o.Network, "network", "none", "network: none (own namespace, lo only) or host")
	f.StringVar(&o.Userns, "userns", "host", "user namespace: host, or remap (container root is host uid 100000)")
	f.StringVar(&o.Restart, "restart", "no", "restart policy: no, on-failure[:max-retries], always, unless-stopped")
	f.StringArrayVar(&o.LogOpts, "log-opt", nil, "log options: max-size=SIZE, max-file=N")
	addResourceFlags(f, &o.Resources)
	f.BoolVar(&g.explain, "explain", false, "print every kernel step (clone, mounts, pivot_root, cgroup writes, execve)")
}
