package ocicli

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/runtime"
)

func newKillCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [--all] CONTAINER_ID [SIGNAL]",
		Short: "send a signal (default SIGTERM) to the container's init, or with --all to all its processes",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return fmt.Errorf("%q requires 1 or 2 arguments: CONTAINER_ID [SIGNAL]", cmd.Name())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				s, err := parseSignal(args[1])
				if err != nil {
					return err
				}
				sig = s
			}
			st, err := g.state().Load(args[0])
			if err != nil {
				return err
			}
			switch s := st.Status(); s {
			case specs.StateStopped:
				// runc's words: containerd's shim matches them.
				return fmt.Errorf("container not running: %s", st.ID)
			case specs.StateCreating:
				return fmt.Errorf("container %s is being created", st.ID)
			}
			cg, _ := st.Cgroup()
			return killContainer(st, cg, sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to every process of the container")
	return cmd
}

// killContainer signals init, which forwards the signal to the program
// (or, before start, ends itself on a signal that would end a process).
// With all, or for SIGKILL in a container without a PID namespace of its
// own (killing init does not kill the rest there), every process of the
// cgroup gets it too.
func killContainer(st *runtime.ContainerState, cg cgroups.Manager, sig syscall.Signal, all bool) error {
	if err := unix.Kill(st.Pid, sig); err != nil && err != unix.ESRCH {
		return fmt.Errorf("signal %d to pid %d: %w", sig, st.Pid, err)
	}
	if (all || (sig == unix.SIGKILL && !st.OwnPidNS)) && cg != nil {
		pids, err := cg.Pids()
		if err != nil {
			return err
		}
		for _, p := range pids {
			unix.Kill(p, sig)
		}
	}
	return nil
}

// parseSignal accepts "KILL", "SIGKILL", "sigkill" and "9".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %d: out of range", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN+") || strings.HasPrefix(name, "SIGRTMAX-") {
		n, err := strconv.Atoi(name[9:])
		if err == nil {
			if name[6] == 'I' {
				return syscall.Signal(34 + n), nil
			}
			return syscall.Signal(64 - n), nil
		}
	}
	return 0, fmt.Errorf("signal %q: unknown", s)
}
