package cli

import (
	"os"

	"github.com/spf13/cobra"

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
			if os.Geteuid() != 0 {
				return errdefs.Unsupportedf("cfs run needs root (namespaces, cgroups and mounts): try sudo")
			}
			o.Image, o.Cmd = args[0], args[1:]
			if cmd.Flags().Changed("entrypoint") {
				o.Entrypoint = &entrypoint
			}
			e, err := g.engine()
			if err != nil {
				return err
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
	f.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint")
	f.StringVar(&o.Network, "network", "none", "network: none (own namespace, lo only) or host")
	f.StringVar(&o.Userns, "userns", "host", "user namespace: host, or remap (container root is host uid 100000)")
	addResourceFlags(f, &o.Resources)
	f.BoolVar(&g.explain, "explain", false, "print every kernel step (clone, mounts, pivot_root, cgroup writes, execve)")
	return cmd
}
