package ocicli

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/runtime"
)

func newDeleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete [-f] CONTAINER_ID",
		Short: "delete a stopped container (with -f, kill it first)",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			root := g.state()
			lock, err := root.Lock(id)
			if err != nil {
				if force && errors.Is(err, errdefs.ErrNotFound) {
					return nil
				}
				return err
			}
			defer lock.Unlock()
			st, err := root.Load(id)
			if err != nil {
				if errors.Is(err, errdefs.ErrNotFound) {
					// An aborted create left a directory without state.
					root.Remove(id)
					if force {
						return nil
					}
				}
				return err
			}
			if s := st.Status(); s != specs.StateStopped && !force {
				return fmt.Errorf("cannot delete container %s that is not stopped: %s", id, s)
			}
			return destroyContainer(g, st, force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container if it is not stopped")
	return cmd
}

// destroyContainer kills what is left (force), removes the cgroup, runs
// poststop hooks and removes the state. The caller holds the lock.
func destroyContainer(g *globals, st *runtime.ContainerState, force bool) error {
	root := g.state()
	cg, cgErr := st.Cgroup()
	if force && st.Status() != specs.StateStopped {
		killContainer(st, cg, unix.SIGKILL, true)
		if cg != nil {
			cg.Thaw() // frozen tasks die only once thawed (cgroup v1)
		}
		waitStopped(st, 10*time.Second)
	}
	var errs []error
	if cg != nil {
		// Processes that outlived init (no PID namespace of their own).
		if pids, _ := cg.Pids(); len(pids) > 0 {
			for _, p := range pids {
				unix.Kill(p, unix.SIGKILL)
			}
			cg.Thaw()
		}
		if err := cg.Destroy(); err != nil {
			errs = append(errs, err)
		}
		removeOurParents(st.CgroupPath)
	} else {
		errs = append(errs, cgErr)
	}
	if st.SharedMountNS {
		unmountUnder(st.Rootfs)
	}
	if !st.Poststop {
		// nothing to run
	} else if spec, err := root.LoadSpec(st.ID); err == nil {
		state := st.OCI()
		state.Status = specs.StateStopped
		for i, h := range runtime.HooksOf(spec, runtime.HookPoststop) {
			if err := runtime.RunHooks(runtime.HookPoststop, []specs.Hook{h}, state, nil); err != nil {
				g.log.warnf("poststop hook #%d: %v", i, err)
			}
		}
	}
	if err := root.Remove(st.ID); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// waitStopped polls until init is gone (or a zombie: its parent, not us,
// reaps it).
func waitStopped(st *runtime.ContainerState, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		if !st.InitAlive() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(delay)
	}
}

// removeOurParents removes the empty cgroups between a container's cgroup
// and our /cfs-runtime parent (relative cgroupsPaths make them), in every
// hierarchy. Cgroups outside /cfs-runtime are someone else's.
func removeOurParents(p string) {
	if !strings.HasPrefix(p, "/cfs-runtime/") {
		return
	}
	h, err := cgroups.DetectHost()
	if err != nil {
		return
	}
	for dir := path.Dir(p); dir != "/cfs-runtime" && dir != "/"; dir = path.Dir(dir) {
		for _, hi := range h.Hierarchies {
			os.Remove(filepath.Join(hi.Mount, dir))
		}
	}
}

// unmountUnder detaches every mount at or below dir, deepest first (a
// container without a mount namespace made them in ours).
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := strings.ReplaceAll(f[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	sort.Slice(mps, func(i, j int) bool { return len(mps[i]) > len(mps[j]) })
	for _, mp := range mps {
		unix.Unmount(mp, unix.MNT_DETACH)
	}
}
