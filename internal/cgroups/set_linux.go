package cgroups

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// Set implements Manager. It checks the values first (ErrInvalid naming the
// field), then writes each resource group through the hierarchy that holds
// its controller. Notes, where hosts differ:
//
//   - memory.swap is memory+swap (the v1 meaning); on v2 memory.swap.max
//     gets swap−limit (SwapToV2), so swap == limit means no swap at all.
//     When the host does not account swap (no memory.memsw.limit_in_bytes /
//     memory.swap.max) the swap limit is skipped and traced, as docker
//     does. On v1 memsw is raised before memory and lowered after it.
//   - memory.kernel is ignored (Linux 5.16 dropped kmem limits); on v2
//     kernelTCP, swappiness, disableOOMKiller=true and useHierarchy=false
//     have no equivalent and fail with ErrUnsupported.
//   - cpu.shares becomes cpu.weight on v2 (CPUSharesToWeight), blockIO
//     weights become io.weight (BlkioWeightToIOWeight) unless BFQ's
//     io.bfq.weight, which takes the v1 range, exists.
//   - realtime CPU, network (net_cls/net_prio) and blockIO leafWeight are v1
//     only; on v2 they fail with ErrUnsupported.
//   - devices are written to the v1 devices controller; on v2 device
//     control needs an eBPF program, which this package does not do: the
//     rules are ignored (traced). See the package caveats.
//   - unified keys are v2 only: they fail on legacy hosts, and on hybrid
//     hosts unless the key's controller is on the cgroup2 mount.
//   - 0 means "unset" for limits, as in runc; -1 means unlimited.
func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := validate(r); err != nil {
		return err
	}
	for _, set := range []func(*specs.LinuxResources) error{
		m.setCpuset, m.setMemory, m.setCPU, m.setPids, m.setBlockIO,
		m.setHugetlb, m.setNetwork, m.setRdma, m.setDevices, m.setUnified,
	} {
		if err := set(r); err != nil {
			return err
		}
	}
	return nil
}

// route returns the directory and version through which a controller is
// driven, enabling it on v2 if needed.
func (m *manager) route(resource, v1name, v2name string) (string, Version, error) {
	if h := m.v1[v1name]; h != nil {
		if h.skipped {
			return "", 0, errdefs.Unsupportedf("%s: the %s hierarchy %s could not be joined", resource, v1name, h.mount)
		}
		return h.dir, V1, nil
	}
	if v2name != "" && m.v2 != nil && m.v2has[v2name] {
		if m.v2.skipped {
			return "", 0, errdefs.Unsupportedf("%s: the cgroup2 hierarchy %s could not be joined", resource, m.v2.mount)
		}
		if err := m.enableV2(v2name); err != nil {
			return "", 0, fmt.Errorf("%s: %w", resource, err)
		}
		return m.v2.dir, V2, nil
	}
	hint := ""
	if slices.Contains(m.host.Unmounted, v1name) {
		hint = " (enabled in the kernel but not mounted: see MountV1Controllers)"
	}
	return "", 0, errdefs.Unsupportedf("%s: the %s controller is not available on this %s host%s", resource, v1name, m.host.Mode, hint)
}

// set writes one resource value, turning kernel refusals into errors that
// say which resource and why.
func (m *manager) set(resource, dir, file, value string) error {
	if err := m.write(dir, file, value); err != nil {
		return resourceErr(resource, value, err)
	}
	return nil
}

// resourceError is a failed resource write: it unwraps both to an errdefs
// category and to the kernel's errno.
type resourceError struct {
	resource, value, why string
	cat, err             error
}

func (e *resourceError) Error() string {
	return fmt.Sprintf("%s %s: %s: %v", e.resource, e.value, e.why, e.err)
}

func (e *resourceError) Unwrap() []error { return []error{e.cat, e.err} }

func resourceErr(resource, value string, err error) error {
	e := &resourceError{resource: resource, value: value, err: err}
	switch {
	case errors.Is(err, unix.EBUSY) && strings.HasPrefix(resource, "memory"):
		e.cat, e.why = errdefs.ErrInvalid, "the cgroup already uses more memory than that and the kernel could not reclaim enough"
	case errors.Is(err, unix.EBUSY):
		e.cat, e.why = errdefs.ErrInvalid, "the kernel refused it: the cgroup's current state (usage, processes) does not allow it"
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ERANGE), errors.Is(err, unix.EOVERFLOW):
		e.cat, e.why = errdefs.ErrInvalid, "the kernel rejected the value"
	case errors.Is(err, unix.ENOSPC):
		e.cat, e.why = errdefs.ErrInvalid, "no such CPUs or memory nodes in the parent cgroup"
	case errors.Is(err, unix.ENOENT):
		e.cat, e.why = errdefs.ErrUnsupported, "the kernel does not provide this setting"
	case errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOTSUP):
		e.cat, e.why = errdefs.ErrUnsupported, "the kernel does not support this setting"
	default:
		return fmt.Errorf("%s %s: %w", resource, value, err)
	}
	return e
}

func (m *manager) setCpuset(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Cpus == "" && c.Mems == "") {
		return nil
	}
	dir, v, err := m.route("cpu.cpus/mems", "cpuset", "cpuset")
	if err != nil {
		return err
	}
	effCPUs, effMems := "cpuset.effective_cpus", "cpuset.effective_mems"
	if v == V2 {
		effCPUs, effMems = "cpuset.cpus.effective", "cpuset.mems.effective"
	}
	for _, f := range []struct{ resource, want, file, eff string }{
		{"cpu.cpus", c.Cpus, "cpuset.cpus", effCPUs},
		{"cpu.mems", c.Mems, "cpuset.mems", effMems},
	} {
		if f.want == "" {
			continue
		}
		// Check against what the parent may use so the error can say
		// which CPUs are missing instead of the kernel's bare EINVAL.
		parent := filepath.Dir(dir)
		if have, err := readString(parent, f.eff); err == nil {
			if miss, err := missingFromList(f.want, have); err != nil {
				return errdefs.Invalidf("%s %q: %v", f.resource, f.want, err)
			} else if miss != "" {
				return errdefs.Invalidf("%s %q: %s not available to the container's parent cgroup (it has %q)", f.resource, f.want, miss, have)
			}
		}
		if err := m.set(f.resource, dir, f.file, f.want); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) setMemory(r *specs.LinuxResources) error {
	mem := r.Memory
	if mem == nil {
		return nil
	}
	if mem.Kernel != nil {
		m.tr.Step("cgroup", "ignore memory.kernel: kernel memory limits were removed in Linux 5.16")
	}
	if mem.Limit == nil && mem.Reservation == nil && mem.Swap == nil && mem.KernelTCP == nil &&
		mem.Swappiness == nil && mem.DisableOOMKiller == nil && mem.UseHierarchy == nil {
		return nil
	}
	dir, v, err := m.route("memory", "memory", "memory")
	if err != nil {
		return err
	}
	if v == V1 {
		return m.setMemoryV1(dir, mem)
	}
	return m.setMemoryV2(dir, mem)
}

func (m *manager) setCPU(r *specs.LinuxResources) error {
	c := r.CPU
	if c == nil || (c.Shares == nil && c.Quota == nil && c.Period == nil && c.Burst == nil &&
		c.RealtimeRuntime == nil && c.RealtimePeriod == nil && c.Idle == nil) {
		return nil
	}
	dir, v, err := m.route("cpu", "cpu", "cpu")
	if err != nil {
		return err
	}
	if v == V1 {
		return m.setCPUV1(dir, c)
	}
	return m.setCPUV2(dir, c)
}

func (m *manager) setPids(r *specs.LinuxResources) error {
	if r.Pids == nil || r.Pids.Limit == nil {
		return nil
	}
	dir, _, err := m.route("pids", "pids", "pids")
	if err != nil {
		return err
	}
	// pids.max is the same file on v1 and v2. A limit <= 0 means no limit,
	// as docker's --pids-limit 0 / -1.
	limit := "max"
	if l := *r.Pids.Limit; l > 0 {
		limit = itoa(l)
	}
	return m.set("pids.limit", dir, "pids.max", limit)
}

func (m *manager) setBlockIO(r *specs.LinuxResources) error {
	b := r.BlockIO
	if b == nil || (b.Weight == nil && b.LeafWeight == nil && len(b.WeightDevice) == 0 &&
		len(b.ThrottleReadBpsDevice) == 0 && len(b.ThrottleWriteBpsDevice) == 0 &&
		len(b.ThrottleReadIOPSDevice) == 0 && len(b.ThrottleWriteIOPSDevice) == 0) {
		return nil
	}
	dir, v, err := m.route("blockIO", "blkio", "io")
	if err != nil {
		return err
	}
	if v == V1 {
		return m.setBlkioV1(dir, b)
	}
	return m.setIOV2(dir, b)
}

func (m *manager) setHugetlb(r *specs.LinuxResources) error {
	if len(r.HugepageLimits) == 0 {
		return nil
	}
	dir, v, err := m.route("hugepageLimits", "hugetlb", "hugetlb")
	if err != nil {
		return err
	}
	limitFile, rsvdFile := "limit_in_bytes", "rsvd.limit_in_bytes"
	if v == V2 {
		limitFile, rsvdFile = "max", "rsvd.max"
	}
	for _, l := range r.HugepageLimits {
		resource := "hugepageLimits[" + l.Pagesize + "]"
		file := "hugetlb." + l.Pagesize + "." + limitFile
		if !exists(dir + "/" + file) {
			return errdefs.Invalidf("%s: page size %s is not supported by this host (no %s)", resource, l.Pagesize, file)
		}
		value := fmt.Sprint(l.Limit)
		if err := m.set(resource, dir, file, value); err != nil {
			return err
		}
		// The spec asks for reservation limits where supported (5.7+): they
		// also cover pages reserved by mmap but not yet faulted in, so the
		// container gets SIGBUS-free failures at mmap time.
		rsvd := "hugetlb." + l.Pagesize + "." + rsvdFile
		if exists(dir + "/" + rsvd) {
			if err := m.set(resource, dir, rsvd, value); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *manager) setNetwork(r *specs.LinuxResources) error {
	n := r.Network
	if n == nil {
		return nil
	}
	if n.ClassID != nil {
		dir, v, err := m.route("network.classID", "net_cls", "")
		if err != nil {
			return err
		}
		if v == V1 {
			if err := m.set("network.classID", dir, "net_cls.classid", fmt.Sprint(*n.ClassID)); err != nil {
				return err
			}
		}
	}
	if len(n.Priorities) > 0 {
		dir, _, err := m.route("network.priorities", "net_prio", "")
		if err != nil {
			return err
		}
		// One "ifname prio" per write: the kernel parses a single pair.
		for _, p := range n.Priorities {
			if err := m.set("network.priorities["+p.Name+"]", dir, "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (m *manager) setRdma(r *specs.LinuxResources) error {
	if len(r.Rdma) == 0 {
		return nil
	}
	dir, _, err := m.route("rdma", "rdma", "rdma")
	if err != nil {
		return err
	}
	names := make([]string, 0, len(r.Rdma))
	for name := range r.Rdma {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		l := r.Rdma[name]
		val := name
		if l.HcaHandles != nil {
			val += fmt.Sprintf(" hca_handle=%d", *l.HcaHandles)
		}
		if l.HcaObjects != nil {
			val += fmt.Sprintf(" hca_object=%d", *l.HcaObjects)
		}
		if val == name {
			continue
		}
		if err := m.set("rdma["+name+"]", dir, "rdma.max", val); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) setDevices(r *specs.LinuxResources) error {
	if len(r.Devices) == 0 {
		return nil
	}
	h := m.v1["devices"]
	if h == nil {
		m.tr.Step("cgroup", "ignore %d device rules: no v1 devices controller (cgroup v2 needs eBPF, not implemented)", len(r.Devices))
		return nil
	}
	if h.skipped {
		return errdefs.Unsupportedf("devices: the devices hierarchy %s could not be joined", h.mount)
	}
	return m.setDevicesV1(h.dir, r.Devices)
}

func (m *manager) setUnified(r *specs.LinuxResources) error {
	if len(r.Unified) == 0 {
		return nil
	}
	if m.v2 == nil {
		return errdefs.Unsupportedf("unified: cgroup v2 resources on a %s host", m.host.Mode)
	}
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ctrl, _, _ := strings.Cut(k, ".")
		resource := "unified[" + k + "]"
		if ctrl != "cgroup" {
			if !m.v2has[ctrl] {
				if _, onV1 := m.v1[ctrl]; onV1 {
					return errdefs.Unsupportedf("%s: the %s controller is on cgroup v1 on this host", resource, ctrl)
				}
				return errdefs.Unsupportedf("%s: no %s controller on the cgroup2 hierarchy", resource, ctrl)
			}
			if err := m.enableV2(ctrl); err != nil {
				return fmt.Errorf("%s: %w", resource, err)
			}
		}
		if m.v2.skipped {
			return errdefs.Unsupportedf("%s: the cgroup2 hierarchy %s could not be joined", resource, m.v2.mount)
		}
		if err := m.write(m.v2.dir, k, r.Unified[k]); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return errdefs.Invalidf("%s: no such file in %s", resource, m.v2.dir)
			}
			return resourceErr(resource, r.Unified[k], err)
		}
	}
	return nil
}
