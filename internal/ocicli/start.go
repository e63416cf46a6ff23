package ocicli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/runtime"
)

func newStartCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start CONTAINER_ID",
		Short: "run the user's program of a created container",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			root := g.state()
			lock, err := root.Lock(args[0])
			if err != nil {
				return err
			}
			defer lock.Unlock()
			st, err := root.Load(args[0])
			if err != nil {
				return err
			}
			return startContainer(g, st)
		},
	}
}

// startContainer does start; the caller holds the container's lock.
func startContainer(g *globals, st *runtime.ContainerState) error {
	root := g.state()
	switch s := st.Status(); s {
	case specs.StateCreated:
	case specs.StateStopped:
		return fmt.Errorf("cannot start a container that has stopped")
	default:
		return fmt.Errorf("cannot start a container that is %s (not created)", s)
	}
	if err := runtime.StartContainer(root.ControlPath(st.ID)); err != nil {
		return err
	}
	st.Started = true
	if err := root.Save(st); err != nil {
		return err
	}
	// The program now runs with init's OOM score; init itself (a Go
	// process, larger than a small memory limit) must not be the OOM
	// killer's choice (see runtime.Container.Start). Lowering needs
	// CAP_SYS_RESOURCE, which some hosts (this project's VM) lack.
	os.WriteFile("/proc/"+strconv.Itoa(st.Pid)+"/oom_score_adj", []byte("-1000"), 0)
	if !st.Poststart {
		return nil
	}
	spec, err := root.LoadSpec(st.ID)
	if err != nil {
		return err
	}
	// A failed poststart hook is a warning; the lifecycle goes on
	// (config.md, "Poststart").
	state := st.OCI()
	state.Status, state.Pid = specs.StateRunning, st.Pid
	for i, h := range runtime.HooksOf(spec, runtime.HookPoststart) {
		if err := runtime.RunHooks(runtime.HookPoststart, []specs.Hook{h}, state, nil); err != nil {
			g.log.warnf("poststart hook #%d: %v", i, err)
		}
	}
	return nil
}
