// Package cgroups places containers in control groups and limits them.
//
// One Manager interface covers the three kinds of host: legacy (cgroup v1
// hierarchies only), unified (a single cgroup2 hierarchy) and hybrid (v1
// hierarchies plus a cgroup2 mount that holds whatever controllers are not
// bound to v1, like this project's development VM, where only hugetlb lives on
// cgroup2). Host detection records, per controller, where it is mounted and in
// which version; the manager then drives each controller through the
// hierarchy that owns it, so callers never branch on "v1 or v2".
//
// Every mkdir, rmdir and file write is reported to the --explain tracer.
//
// Hierarchies that carry no resource controller we use (named v1 hierarchies
// such as name=systemd, and the cgroup2 mount on a hybrid host) are joined
// like runc does, so a container has its own cgroup everywhere, but failures
// there are not fatal: they are traced and that hierarchy is skipped (see
// New). A Set that needs a controller in a skipped hierarchy fails.
//
// Caveats:
//   - cgroup v2 device control needs an eBPF program (BPF_CGROUP_DEVICE),
//     which is not implemented: on v2 the spec's device rules are ignored,
//     so the runtime must not rely on them there (drop CAP_MKNOD, or mount
//     the rootfs nodev, so a container cannot open host devices).
//   - On v2 a controller must be enabled in cgroup.subtree_control of every
//     ancestor. Create enables everything available in the parents it
//     creates; in ancestors that already exist (the hierarchy root) Set
//     enables only the controllers a resource needs, when it needs them.
//     Threaded subtrees and "domain invalid" cgroups are not handled.
//   - v1 hierarchies the kernel has but nobody mounted (net_cls, net_prio
//     on the development VM) are mounted only on request:
//     MountV1Controllers.
package cgroups

import (
	"fmt"
	"path"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// Mode says which cgroup versions a host runs.
type Mode int

const (
	// Legacy hosts have only cgroup v1 hierarchies.
	Legacy Mode = iota + 1
	// Hybrid hosts have v1 hierarchies and a cgroup2 mount; each controller
	// lives in exactly one of them.
	Hybrid
	// Unified hosts have a single cgroup2 hierarchy.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy (cgroup v1)"
	case Hybrid:
		return "hybrid (cgroup v1 + v2)"
	case Unified:
		return "unified (cgroup v2)"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// Version is a cgroup hierarchy version: 1 or 2.
type Version int

const (
	V1 Version = 1
	V2 Version = 2
)

// Controller says where one controller is driven from.
type Controller struct {
	Version Version
	// Mount is the absolute mount point of the controller's hierarchy.
	Mount string
}

// Hierarchy is one mounted cgroup hierarchy.
type Hierarchy struct {
	Version Version
	// Mount is the absolute mount point, e.g. /sys/fs/cgroup/memory.
	Mount string
	// Root is the cgroup mounted there as mountinfo shows it ("/" unless
	// the mount is a bind of a sub-cgroup).
	Root string
	// Controllers are the controllers of the hierarchy: for v1 the
	// controller mount options, named hierarchies as "name=systemd"; for
	// v2 the controllers available at the mount's root (cgroup.controllers).
	Controllers []string
}

// Host is what detection found.
type Host struct {
	Mode Mode
	// Controllers maps a controller name to where it is driven from. v1
	// names are the kernel's ("blkio", "name=systemd"); v2 names too
	// ("io", "hugetlb").
	Controllers map[string]Controller
	// Hierarchies lists the mounted hierarchies, v1 ones first in mount
	// order, then the cgroup2 one if any.
	Hierarchies []Hierarchy
	// Unified is the cgroup2 mount point, "" if cgroup2 is not mounted.
	Unified string
	// Unmounted lists v1-only controllers the kernel has enabled but that
	// no hierarchy holds (on the development VM: net_cls, net_prio,
	// perf_event). MountV1Controllers can mount them.
	Unmounted []string
}

// Controller returns where the named controller is driven from.
func (h *Host) Controller(name string) (Controller, bool) {
	c, ok := h.Controllers[name]
	return c, ok
}

func (h *Host) clone() *Host {
	c := &Host{
		Mode:        h.Mode,
		Controllers: make(map[string]Controller, len(h.Controllers)),
		Hierarchies: make([]Hierarchy, len(h.Hierarchies)),
		Unified:     h.Unified,
		Unmounted:   append([]string(nil), h.Unmounted...),
	}
	for k, v := range h.Controllers {
		c.Controllers[k] = v
	}
	for i, hi := range h.Hierarchies {
		hi.Controllers = append([]string(nil), hi.Controllers...)
		c.Hierarchies[i] = hi
	}
	return c
}

// Stats is a snapshot of a cgroup's usage. A field is zero when the host
// does not account it (controller absent or not enabled).
type Stats struct {
	CPU    CPUStats
	Memory MemoryStats
	Pids   PidsStats
	BlkIO  BlkIOStats
}

// CPUStats is CPU time consumed, in nanoseconds, and CFS throttling.
type CPUStats struct {
	UsageNS          uint64
	UserNS           uint64
	SystemNS         uint64
	Periods          uint64
	ThrottledPeriods uint64
	ThrottledNS      uint64
}

// MemoryStats is memory use in bytes. Limit 0 means no limit.
type MemoryStats struct {
	Usage     uint64
	MaxUsage  uint64 // v1 max_usage_in_bytes, v2 memory.peak (Linux 5.19+)
	Limit     uint64
	SwapUsage uint64
	OOMKills  uint64
}

// PidsStats is the number of tasks. Limit 0 means no limit.
type PidsStats struct {
	Current uint64
	Limit   uint64
}

// BlkIOStats is block I/O done by the cgroup, summed over devices.
type BlkIOStats struct {
	ReadBytes  uint64
	WriteBytes uint64
	ReadOps    uint64
	WriteOps   uint64
}

// Manager drives one container's cgroup in every hierarchy of the host.
// Methods are not safe for concurrent use on the same Manager, except Stats,
// Pids, Paths and OOMKilled, which only read.
type Manager interface {
	// Create makes the cgroup in every hierarchy, creating missing parents.
	// On v1 it copies cpuset.cpus/mems from the parent (a new cpuset cgroup
	// starts empty and takes no tasks); on v2 it enables, in the parents it
	// creates, every controller their parent offers. An existing cgroup is
	// reused.
	Create() error
	// Add moves a process into the cgroup in every hierarchy.
	Add(pid int) error
	// AddSome adds pid to part of the hierarchies: those holding the
	// memory controller when memory is true, the others when false.
	// Together the two calls equal Add. The runtime joins the memory
	// hierarchy last, once its init has started, so init's own start-up
	// memory is not charged to the container's limit.
	AddSome(pid int, memory bool) error
	// Set applies runtime-spec resources; see the package notes on Set.
	Set(r *specs.LinuxResources) error
	// Stats reads usage counters.
	Stats() (*Stats, error)
	// Freeze stops every process of the cgroup and returns once the kernel
	// reports the cgroup frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// Destroy removes the cgroup (and any sub-cgroups a container made) in
	// every hierarchy, and the immediate parent when it became empty. It
	// kills nothing: the caller kills the processes first; Destroy retries
	// briefly while exiting tasks leave. Missing directories are fine.
	Destroy() error
	// Pids lists the processes in the cgroup.
	Pids() ([]int, error)
	// Paths maps each controller ("memory", "name=systemd", "hugetlb", and
	// "unified" for the cgroup2 directory) to the cgroup's absolute
	// directory.
	Paths() map[string]string
	// OOMKilled reports whether the kernel OOM killer killed a process of
	// the cgroup.
	OOMKilled() (bool, error)
}

// cleanPath checks a cgroup path given to New and returns it cleaned and
// absolute ("/cfs/<id>"). It must name a cgroup below the hierarchy root
// and may not climb out of it.
func cleanPath(p string) (string, error) {
	if p == "" {
		return "", errdefs.Invalidf("cgroup path is empty")
	}
	for _, c := range strings.Split(p, "/") {
		if c == ".." {
			return "", errdefs.Invalidf("cgroup path %q: must not contain ..", p)
		}
	}
	if strings.ContainsAny(p, "\n\x00") {
		return "", errdefs.Invalidf("cgroup path %q: invalid character", p)
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return "", errdefs.Invalidf("cgroup path %q: must name a cgroup below the root", p)
	}
	return c, nil
}
