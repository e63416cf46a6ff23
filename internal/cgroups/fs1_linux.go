package cgroups

// cgroup v1 controller files, from the kernel's
// Documentation/admin-guide/cgroup-v1/*.rst.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// unlimitedV1 is the smallest value v1 reports for "no limit"
// (PAGE_COUNTER_MAX * PAGE_SIZE rounds to 0x7FFFFFFFFFFFF000 on 4K pages).
const unlimitedV1 = 1 << 62

func (m *manager) setMemoryV1(dir string, mem *specs.LinuxMemory) error {
	limit, swap := val(mem.Limit), val(mem.Swap)
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		if err := checkUsage(dir, "memory.usage_in_bytes", limit); err != nil {
			return err
		}
	}
	const memsw = "memory.memsw.limit_in_bytes"
	hasMemsw := exists(dir + "/" + memsw)
	if swap != 0 && !hasMemsw {
		m.tr.Step("cgroup", "skip memory.swap %d: swap accounting is off (no %s)", swap, memsw)
		swap = 0
	}
	if limit == -1 && swap == 0 && hasMemsw {
		// An unlimited memory limit takes memsw with it, or a previous
		// finite memsw would make the write fail (memsw >= memory).
		swap = -1
	}
	setLimit := func() error {
		if limit == 0 {
			return nil
		}
		return m.set("memory.limit", dir, "memory.limit_in_bytes", itoa(limit))
	}
	setSwap := func() error {
		if swap == 0 {
			return nil
		}
		return m.set("memory.swap", dir, memsw, itoa(swap))
	}
	// The kernel keeps memory.limit <= memsw.limit after every write: when
	// the memory limit grows, memsw must grow first; when it shrinks,
	// memory must shrink first.
	first, second := setLimit, setSwap
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return fmt.Errorf("memory.limit: reading current limit: %w", err)
		}
		if limit == -1 || uint64(limit) > cur {
			first, second = setSwap, setLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if r := val(mem.Reservation); r != 0 {
		if err := m.set("memory.reservation", dir, "memory.soft_limit_in_bytes", itoa(r)); err != nil {
			return err
		}
	}
	if k := val(mem.KernelTCP); k != 0 {
		if err := m.set("memory.kernelTCP", dir, "memory.kmem.tcp.limit_in_bytes", itoa(k)); err != nil {
			return err
		}
	}
	if s := mem.Swappiness; s != nil {
		if err := m.set("memory.swappiness", dir, "memory.swappiness", strconv.FormatUint(*s, 10)); err != nil {
			return err
		}
	}
	if d := mem.DisableOOMKiller; d != nil {
		if err := m.set("memory.disableOOMKiller", dir, "memory.oom_control", boolStr(*d)); err != nil {
			return err
		}
	}
	if u := mem.UseHierarchy; u != nil {
		if err := m.set("memory.useHierarchy", dir, "memory.use_hierarchy", boolStr(*u)); err != nil {
			return err
		}
	}
	return nil
}

// checkUsage implements runtime-spec checkBeforeUpdate: refuse a limit
// below what the cgroup already uses.
func checkUsage(dir, file string, limit int64) error {
	usage, err := readUint(dir, file)
	if err != nil {
		return fmt.Errorf("memory.limit: reading usage: %w", err)
	}
	if uint64(limit) < usage {
		return errdefs.Invalidf("memory.limit %d: below the cgroup's current usage %d", limit, usage)
	}
	return nil
}

func (m *manager) setCPUV1(dir string, c *specs.LinuxCPU) error {
	if s := uval(c.Shares); s != 0 {
		if err := m.set("cpu.shares", dir, "cpu.shares", strconv.FormatUint(s, 10)); err != nil {
			return err
		}
	}
	if p := uval(c.Period); p != 0 {
		if err := m.set("cpu.period", dir, "cpu.cfs_period_us", strconv.FormatUint(p, 10)); err != nil {
			return err
		}
	}
	if q := val(c.Quota); q != 0 {
		if err := m.set("cpu.quota", dir, "cpu.cfs_quota_us", itoa(q)); err != nil {
			return err
		}
	}
	if b := c.Burst; b != nil {
		if err := m.set("cpu.burst", dir, "cpu.cfs_burst_us", strconv.FormatUint(*b, 10)); err != nil {
			return err
		}
	}
	if err := m.setRealtimeV1(dir, c); err != nil {
		return err
	}
	if i := c.Idle; i != nil {
		if err := m.set("cpu.idle", dir, "cpu.idle", itoa(*i)); err != nil {
			return err
		}
	}
	return nil
}

// setRealtimeV1 writes the RT period and runtime. The kernel wants
// runtime <= period at every step, so when the period shrinks below the
// current runtime the runtime has to go first.
func (m *manager) setRealtimeV1(dir string, c *specs.LinuxCPU) error {
	period, runtime := uval(c.RealtimePeriod), c.RealtimeRuntime
	setPeriod := func() error {
		return m.set("cpu.realtimePeriod", dir, "cpu.rt_period_us", strconv.FormatUint(period, 10))
	}
	setRuntime := func() error {
		return m.set("cpu.realtimeRuntime", dir, "cpu.rt_runtime_us", itoa(*runtime))
	}
	if period != 0 {
		if err := setPeriod(); err != nil {
			if runtime == nil {
				return err
			}
			if err := setRuntime(); err != nil {
				return err
			}
			return setPeriod()
		}
	}
	if runtime != nil {
		return setRuntime()
	}
	return nil
}

func (m *manager) setBlkioV1(dir string, b *specs.LinuxBlockIO) error {
	// Proportional weights exist only with a scheduler that implements
	// them: CFQ (blkio.weight, gone in 5.0) or BFQ (blkio.bfq.weight).
	weightFile, devFile := "blkio.weight", "blkio.weight_device"
	if !exists(dir+"/"+weightFile) && exists(dir+"/blkio.bfq.weight") {
		weightFile, devFile = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if w := b.Weight; w != nil && *w != 0 {
		if err := m.set("blockIO.weight", dir, weightFile, strconv.Itoa(int(*w))); err != nil {
			return err
		}
	}
	if w := b.LeafWeight; w != nil && *w != 0 {
		if err := m.set("blockIO.leafWeight", dir, "blkio.leaf_weight", strconv.Itoa(int(*w))); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		if w := d.Weight; w != nil && *w != 0 {
			if err := m.set("blockIO.weightDevice["+dev+"]", dir, devFile, fmt.Sprintf("%s %d", dev, *w)); err != nil {
				return err
			}
		}
		if w := d.LeafWeight; w != nil && *w != 0 {
			if err := m.set("blockIO.weightDevice["+dev+"].leafWeight", dir, "blkio.leaf_weight_device", fmt.Sprintf("%s %d", dev, *w)); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		name, file string
		devs       []specs.LinuxThrottleDevice
	}{
		{"blockIO.throttleReadBpsDevice", "blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blockIO.throttleWriteBpsDevice", "blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blockIO.throttleReadIOPSDevice", "blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blockIO.throttleWriteIOPSDevice", "blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
			if err := m.set(t.name+"["+dev+"]", dir, t.file, fmt.Sprintf("%s %d", dev, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setDevicesV1 writes the rules in order; a leading deny-all ("a") resets
// the list to default-deny, after which the allow rules open it up. On a
// running container this briefly denies everything between the two, which
// runc avoids with a rule emulator; we accept it for updates.
func (m *manager) setDevicesV1(dir string, devs []specs.LinuxDeviceCgroup) error {
	for _, d := range devs {
		rule, err := deviceRule(d)
		if err != nil {
			return err
		}
		file := "devices.deny"
		if d.Allow {
			file = "devices.allow"
		}
		if err := m.set("devices", dir, file, rule); err != nil {
			return err
		}
	}
	return nil
}

// cpusetFill copies cpuset.cpus and cpuset.mems from the parent when they
// are empty: a new v1 cpuset cgroup starts empty and refuses tasks
// (ENOSPC) until both are set. An empty parent we made is filled first.
func (m *manager) cpusetFill(h *hier, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readString(dir, f)
		if err != nil {
			return fmt.Errorf("reading %s/%s: %w", dir, f, err)
		}
		if cur != "" {
			continue
		}
		parent := filepath.Dir(dir)
		pv, err := readString(parent, f)
		if err != nil {
			return fmt.Errorf("reading %s/%s: %w", parent, f, err)
		}
		if pv == "" && parent != h.mount && strings.HasPrefix(parent, h.mount+"/") {
			if err := m.cpusetFill(h, parent); err != nil {
				return err
			}
			if pv, err = readString(parent, f); err != nil {
				return fmt.Errorf("reading %s/%s: %w", parent, f, err)
			}
		}
		if pv == "" {
			return errdefs.Invalidf("cgroup %s: parent has an empty %s", dir, f)
		}
		if err := m.write(dir, f, pv); err != nil {
			return err
		}
	}
	return nil
}

const freezeTimeout = 5 * time.Second

// freezeV1 asks for FROZEN and polls until the kernel gets there (it
// passes through FREEZING while tasks reach a freezable point). The request
// is repeated now and then because a task forked mid-freeze can leave the
// cgroup stuck in FREEZING; runc does the same.
func (m *manager) freezeV1(dir string) error {
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	state := ""
	for i := 0; ; i++ {
		if i%25 == 0 {
			if err := m.write(dir, "freezer.state", "FROZEN"); err != nil {
				return fmt.Errorf("freezing cgroup %s: %w", dir, err)
			}
		}
		var err error
		if state, err = readString(dir, "freezer.state"); err != nil {
			return fmt.Errorf("freezing cgroup %s: %w", dir, err)
		}
		if state == "FROZEN" {
			return nil
		}
		if time.Now().After(deadline) {
			_ = m.write(dir, "freezer.state", "THAWED")
			return errdefs.Conflictf("freezing cgroup %s: still %s after %v", dir, state, freezeTimeout)
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

func (m *manager) thawV1(dir string) error {
	if err := m.write(dir, "freezer.state", "THAWED"); err != nil {
		return fmt.Errorf("thawing cgroup %s: %w", dir, err)
	}
	deadline := time.Now().Add(freezeTimeout)
	for {
		state, err := readString(dir, "freezer.state")
		if err != nil {
			return fmt.Errorf("thawing cgroup %s: %w", dir, err)
		}
		if state == "THAWED" {
			return nil
		}
		if time.Now().After(deadline) {
			return errdefs.Conflictf("thawing cgroup %s: still %s after %v", dir, state, freezeTimeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// statsV1 fills what the v1 hierarchies account. Missing files (controller
// absent, feature compiled out) leave zeros.
func (m *manager) statsV1(s *Stats) error {
	var errs []error
	get := func(dst *uint64, dir, file string) {
		v, err := readUint(dir, file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		*dst = v
	}
	if h := m.live("cpuacct"); h != nil {
		get(&s.CPU.UsageNS, h.dir, "cpuacct.usage")
		get(&s.CPU.UserNS, h.dir, "cpuacct.usage_user")
		get(&s.CPU.SystemNS, h.dir, "cpuacct.usage_sys")
	}
	if h := m.live("cpu"); h != nil {
		if st, err := readKeyedAll(h.dir, "cpu.stat"); err == nil {
			s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledNS = st["nr_periods"], st["nr_throttled"], st["throttled_time"]
		}
	}
	if h := m.live("memory"); h != nil {
		get(&s.Memory.Usage, h.dir, "memory.usage_in_bytes")
		get(&s.Memory.MaxUsage, h.dir, "memory.max_usage_in_bytes")
		get(&s.Memory.Limit, h.dir, "memory.limit_in_bytes")
		if s.Memory.Limit >= unlimitedV1 {
			s.Memory.Limit = 0
		}
		var memsw uint64
		get(&memsw, h.dir, "memory.memsw.usage_in_bytes")
		if memsw > s.Memory.Usage {
			s.Memory.SwapUsage = memsw - s.Memory.Usage
		}
		if n, err := readKeyed(h.dir, "memory.oom_control", "oom_kill"); err == nil {
			s.Memory.OOMKills = n
		}
	}
	if h := m.live("pids"); h != nil {
		get(&s.Pids.Current, h.dir, "pids.current")
		get(&s.Pids.Limit, h.dir, "pids.max")
	}
	if h := m.live("blkio"); h != nil {
		for _, pre := range []string{"blkio.throttle.", "blkio.bfq.", "blkio."} {
			b, err := os.ReadFile(h.dir + "/" + pre + "io_service_bytes_recursive")
			if err != nil {
				continue
			}
			s.BlkIO.ReadBytes, s.BlkIO.WriteBytes = sumBlkio(string(b))
			if b, err := os.ReadFile(h.dir + "/" + pre + "io_serviced_recursive"); err == nil {
				s.BlkIO.ReadOps, s.BlkIO.WriteOps = sumBlkio(string(b))
			}
			break
		}
	}
	return errors.Join(errs...)
}

// live returns the v1 hierarchy of a controller if the cgroup was joined.
func (m *manager) live(ctrl string) *hier {
	if h := m.v1[ctrl]; h != nil && !h.skipped {
		return h
	}
	return nil
}

// sumBlkio sums the Read and Write lines ("8:0 Read 4096") of a v1 blkio
// stat file over all devices.
func sumBlkio(s string) (read, write uint64) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		v, err := strconv.ParseUint(f[2], 10, 64)
		if err != nil {
			continue
		}
		switch f[1] {
		case "Read":
			read += v
		case "Write":
			write += v
		}
	}
	return read, write
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
