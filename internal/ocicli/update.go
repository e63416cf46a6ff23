package ocicli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/runtime"
)

func newUpdateCmd(g *globals) *cobra.Command {
	var (
		resources                                  string
		memory, memSwap, memReservation, kernelMem int64
		cpuShares, cpuPeriod, blkioWeight          uint64
		cpuQuota, pidsLimit                        int64
		cpusetCpus, cpusetMems                     string
	)
	cmd := &cobra.Command{
		Use:   "update [flags] CONTAINER_ID",
		Short: "change the resource limits of a container (-r FILE|- with linux.resources JSON, or flags)",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
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
			if st.Status() == specs.StateStopped {
				return fmt.Errorf("container %s is not running", id)
			}
			r := &specs.LinuxResources{}
			if resources != "" {
				var in io.Reader = os.Stdin
				if resources != "-" {
					f, err := os.Open(resources)
					if err != nil {
						return err
					}
					defer f.Close()
					in = f
				}
				if err := json.NewDecoder(in).Decode(r); err != nil {
					return fmt.Errorf("decoding resources: %w", err)
				}
			}
			f := cmd.Flags()
			mem := func() *specs.LinuxMemory {
				if r.Memory == nil {
					r.Memory = &specs.LinuxMemory{}
				}
				return r.Memory
			}
			cpu := func() *specs.LinuxCPU {
				if r.CPU == nil {
					r.CPU = &specs.LinuxCPU{}
				}
				return r.CPU
			}
			if f.Changed("memory") {
				mem().Limit = &memory
			}
			if f.Changed("memory-swap") {
				mem().Swap = &memSwap
			}
			if f.Changed("memory-reservation") {
				mem().Reservation = &memReservation
			}
			if f.Changed("kernel-memory") {
				g.log.warnf("--kernel-memory is ignored (kernel memory limits are deprecated)")
			}
			if f.Changed("cpu-shares") {
				cpu().Shares = &cpuShares
			}
			if f.Changed("cpu-period") {
				cpu().Period = &cpuPeriod
			}
			if f.Changed("cpu-quota") {
				cpu().Quota = &cpuQuota
			}
			if f.Changed("cpuset-cpus") {
				cpu().Cpus = cpusetCpus
			}
			if f.Changed("cpuset-mems") {
				cpu().Mems = cpusetMems
			}
			if f.Changed("pids-limit") {
				r.Pids = &specs.LinuxPids{Limit: &pidsLimit}
			}
			if f.Changed("blkio-weight") {
				w := uint16(blkioWeight)
				r.BlockIO = &specs.LinuxBlockIO{Weight: &w}
			}
			cg, err := st.Cgroup()
			if err != nil {
				return err
			}
			if err := cg.Set(runtime.WithInitTasks(r, st.Pid)); err != nil {
				return err
			}
			return saveResources(root, id, r)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&resources, "resources", "r", "", "file with linux.resources JSON, - for stdin")
	f.Int64Var(&memory, "memory", 0, "memory limit in bytes")
	f.Int64Var(&memSwap, "memory-swap", 0, "memory+swap limit in bytes")
	f.Int64Var(&memReservation, "memory-reservation", 0, "memory soft limit in bytes")
	f.Int64Var(&kernelMem, "kernel-memory", 0, "ignored")
	f.Uint64Var(&cpuShares, "cpu-shares", 0, "CPU shares (relative weight)")
	f.Uint64Var(&cpuPeriod, "cpu-period", 0, "CFS period in µs")
	f.Int64Var(&cpuQuota, "cpu-quota", 0, "CFS quota in µs per period")
	f.StringVar(&cpusetCpus, "cpuset-cpus", "", "CPUs allowed")
	f.StringVar(&cpusetMems, "cpuset-mems", "", "memory nodes allowed")
	f.Int64Var(&pidsLimit, "pids-limit", 0, "maximum number of tasks")
	f.Uint64Var(&blkioWeight, "blkio-weight", 0, "block I/O weight (10-1000)")
	return cmd
}

// saveResources merges r into the stored spec, so later reads of the
// container's config see the limits in force.
func saveResources(root runtime.StateRoot, id string, r *specs.LinuxResources) error {
	spec, err := root.LoadSpec(id)
	if err != nil {
		return err
	}
	if spec.Linux.Resources == nil {
		spec.Linux.Resources = &specs.LinuxResources{}
	}
	cur := spec.Linux.Resources
	if r.Memory != nil {
		cur.Memory = r.Memory
	}
	if r.CPU != nil {
		cur.CPU = r.CPU
	}
	if r.Pids != nil {
		cur.Pids = r.Pids
	}
	if r.BlockIO != nil {
		cur.BlockIO = r.BlockIO
	}
	if r.HugepageLimits != nil {
		cur.HugepageLimits = r.HugepageLimits
	}
	if r.Unified != nil {
		cur.Unified = r.Unified
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return root.SaveSpec(id, b)
}
