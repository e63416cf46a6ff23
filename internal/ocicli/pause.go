package ocicli

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
)

func newPauseCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "pause CONTAINER_ID",
		Short: "freeze every process of a running container (cgroup freezer)",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return freeze(g, args[0], true)
		},
	}
}

func newResumeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "resume CONTAINER_ID",
		Short: "thaw a paused container",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			return freeze(g, args[0], false)
		},
	}
}

func freeze(g *globals, id string, pause bool) error {
	root := g.state()
	lock, err := root.Lock(id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	st, err := root.Load(id)
	if err != nil {
		return err
	}
	s := st.Status()
	cg, err := st.Cgroup()
	if err != nil {
		return err
	}
	if pause {
		if s != specs.StateRunning && s != specs.StateCreated {
			return fmt.Errorf("container %s is %s, not running", id, s)
		}
		return cg.Freeze()
	}
	if s != "paused" {
		return fmt.Errorf("container %s is %s, not paused", id, s)
	}
	return cg.Thaw()
}
