package cgroups

// cgroup v2 controller files, from the kernel's
// Documentation/admin-guide/cgroup-v2.rst.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// enableAllV2 enables, in a parent cgroup we just created, every controller
// its own parent hands down, so the container below gets accounting
// (memory.current, io.stat, ...) even with no limit set. One write for all;
// if one controller refuses (cpu with a realtime task around), retry one by
// one and keep the rest.
func (m *manager) enableAllV2(dir string) error {
	avail, err := readString(dir, "cgroup.controllers")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s/cgroup.controllers: %w", dir, err)
	}
	ctrls := strings.Fields(avail)
	if len(ctrls) == 0 {
		return nil
	}
	if err := m.write(dir, "cgroup.subtree_control", "+"+strings.Join(ctrls, " +")); err != nil {
		for _, c := range ctrls {
			_ = m.write(dir, "cgroup.subtree_control", "+"+c)
		}
	}
	return nil
}

// enableV2 makes a controller available to the container's cgroup by
// enabling it in cgroup.subtree_control of every ancestor that lacks it,
// from the hierarchy root down. This is the one place the package writes to
// cgroups it did not create, and only when a resource asks for the
// controller: on a v2 host without systemd the root enables nothing.
func (m *manager) enableV2(ctrl string) error {
	if m.v2on[ctrl] {
		return nil
	}
	if avail, err := readString(m.v2.dir, "cgroup.controllers"); err == nil && slices.Contains(strings.Fields(avail), ctrl) {
		m.v2on[ctrl] = true
		return nil
	}
	dir := m.v2.mount
	for _, part := range strings.Split(strings.Trim(m.path, "/"), "/") {
		on, err := readString(dir, "cgroup.subtree_control")
		if err != nil {
			return fmt.Errorf("enabling the %s controller: %w", ctrl, err)
		}
		if !slices.Contains(strings.Fields(on), ctrl) {
			if err := m.write(dir, "cgroup.subtree_control", "+"+ctrl); err != nil {
				return errdefs.Unsupportedf("enabling the %s controller in %s: %v", ctrl, dir, err)
			}
		}
		dir = filepath.Join(dir, part)
	}
	m.v2on[ctrl] = true
	return nil
}

func maxStr(v int64) string {
	if v == -1 {
		return "max"
	}
	return itoa(v)
}

func (m *manager) setMemoryV2(dir string, mem *specs.LinuxMemory) error {
	if k := val(mem.KernelTCP); k != 0 {
		return errdefs.Unsupportedf("memory.kernelTCP: no cgroup v2 equivalent")
	}
	if mem.Swappiness != nil {
		return errdefs.Unsupportedf("memory.swappiness: no per-cgroup swappiness on cgroup v2")
	}
	if d := mem.DisableOOMKiller; d != nil && *d {
		return errdefs.Unsupportedf("memory.disableOOMKiller: the OOM killer cannot be disabled on cgroup v2")
	}
	if u := mem.UseHierarchy; u != nil && !*u {
		return errdefs.Unsupportedf("memory.useHierarchy=false: cgroup v2 is always hierarchical")
	}
	limit := val(mem.Limit)
	swap, setSwap, err := SwapToV2(val(mem.Swap), limit)
	if err != nil {
		return err
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && limit > 0 {
		if err := checkUsage(dir, "memory.current", limit); err != nil {
			return err
		}
	}
	// memory.max and memory.swap.max are independent, so unlike v1 the
	// order does not matter. Note that lowering memory.max below usage
	// makes the kernel reclaim and then OOM-kill rather than refuse.
	if limit != 0 {
		if err := m.set("memory.limit", dir, "memory.max", maxStr(limit)); err != nil {
			return err
		}
	}
	if setSwap {
		if exists(dir + "/memory.swap.max") {
			if err := m.set("memory.swap", dir, "memory.swap.max", maxStr(swap)); err != nil {
				return err
			}
		} else {
			m.tr.Step("cgroup", "skip memory.swap: the kernel does not account swap (no memory.swap.max)")
		}
	}
	if r := val(mem.Reservation); r != 0 {
		if err := m.set("memory.reservation", dir, "memory.low", maxStr(r)); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) setCPUV2(dir string, c *specs.LinuxCPU) error {
	if val(c.RealtimeRuntime) != 0 || uval(c.RealtimePeriod) != 0 {
		return errdefs.Unsupportedf("cpu.realtimeRuntime/realtimePeriod: no realtime group scheduling on cgroup v2")
	}
	idle := val(c.Idle)
	if c.Idle != nil {
		if err := m.set("cpu.idle", dir, "cpu.idle", itoa(idle)); err != nil {
			return err
		}
	}
	// An idle group has the minimum weight by definition and the kernel
	// refuses a weight for it.
	if s := uval(c.Shares); s != 0 && idle != 1 {
		w := strconv.FormatUint(CPUSharesToWeight(s), 10)
		if err := m.set("cpu.shares", dir, "cpu.weight", w); err != nil {
			return err
		}
	}
	if val(c.Quota) != 0 || uval(c.Period) != 0 {
		// cpu.max holds "quota period"; keep the half not being set.
		quota, period := "max", strconv.Itoa(defaultPeriod)
		if cur, err := readString(dir, "cpu.max"); err == nil {
			if f := strings.Fields(cur); len(f) == 2 {
				quota, period = f[0], f[1]
			}
		}
		if q := val(c.Quota); q != 0 {
			quota = maxStr(q)
		}
		if p := uval(c.Period); p != 0 {
			period = strconv.FormatUint(p, 10)
		}
		if err := m.set("cpu.quota/period", dir, "cpu.max", quota+" "+period); err != nil {
			return err
		}
	}
	if b := c.Burst; b != nil {
		if err := m.set("cpu.burst", dir, "cpu.max.burst", strconv.FormatUint(*b, 10)); err != nil {
			return err
		}
	}
	return nil
}

func (m *manager) setIOV2(dir string, b *specs.LinuxBlockIO) error {
	if w := b.LeafWeight; w != nil && *w != 0 {
		return errdefs.Unsupportedf("blockIO.leafWeight: no cgroup v2 equivalent")
	}
	// BFQ's io.bfq.weight takes the v1 range as is; io.weight (blk-iocost)
	// takes 1-10000.
	bfq := exists(dir + "/io.bfq.weight")
	weight := func(resource, dev string, w uint16) error {
		switch {
		case bfq:
			return m.set(resource, dir, "io.bfq.weight", strings.TrimSpace(dev+" "+strconv.Itoa(int(w))))
		case exists(dir + "/io.weight"):
			if dev == "" {
				dev = "default"
			}
			return m.set(resource, dir, "io.weight", fmt.Sprintf("%s %d", dev, BlkioWeightToIOWeight(w)))
		}
		return errdefs.Unsupportedf("%s: no io.weight or io.bfq.weight (no proportional I/O controller)", resource)
	}
	if w := b.Weight; w != nil && *w != 0 {
		if err := weight("blockIO.weight", "", *w); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		if w := d.LeafWeight; w != nil && *w != 0 {
			return errdefs.Unsupportedf("blockIO.weightDevice[%s].leafWeight: no cgroup v2 equivalent", dev)
		}
		if w := d.Weight; w != nil && *w != 0 {
			if err := weight("blockIO.weightDevice["+dev+"]", dev, *w); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		name, key string
		devs      []specs.LinuxThrottleDevice
	}{
		{"blockIO.throttleReadBpsDevice", "rbps", b.ThrottleReadBpsDevice},
		{"blockIO.throttleWriteBpsDevice", "wbps", b.ThrottleWriteBpsDevice},
		{"blockIO.throttleReadIOPSDevice", "riops", b.ThrottleReadIOPSDevice},
		{"blockIO.throttleWriteIOPSDevice", "wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
			rate := "max" // v1 uses 0 to remove a limit
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			if err := m.set(t.name+"["+dev+"]", dir, "io.max", dev+" "+t.key+"="+rate); err != nil {
				return err
			}
		}
	}
	return nil
}

// freezeV2 writes cgroup.freeze and waits for cgroup.events to report the
// new state ("frozen 1" once every task has stopped).
func (m *manager) freezeV2(dir string, freeze bool) error {
	want, verb := uint64(0), "thawing"
	if freeze {
		want, verb = 1, "freezing"
	}
	if err := m.write(dir, "cgroup.freeze", strconv.FormatUint(want, 10)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errdefs.Unsupportedf("%s cgroup %s: no cgroup.freeze (Linux 5.2+)", verb, dir)
		}
		return fmt.Errorf("%s cgroup %s: %w", verb, dir, err)
	}
	deadline := time.Now().Add(freezeTimeout)
	delay := 100 * time.Microsecond
	for {
		ev, err := readKeyedAll(dir, "cgroup.events")
		if err != nil {
			return fmt.Errorf("%s cgroup %s: %w", verb, dir, err)
		}
		if ev["frozen"] == want {
			return nil
		}
		if time.Now().After(deadline) {
			if freeze {
				_ = m.write(dir, "cgroup.freeze", "0")
			}
			return errdefs.Conflictf("%s cgroup %s: cgroup.events still says frozen %d after %v", verb, dir, ev["frozen"], freezeTimeout)
		}
		time.Sleep(delay)
		delay = min(delay*2, 10*time.Millisecond)
	}
}

// statsV2 fills what the cgroup2 hierarchy accounts, for the controllers v1
// does not already hold (on a hybrid host v1 has most of them).
func (m *manager) statsV2(s *Stats) error {
	dir := m.v2.dir
	var errs []error
	get := func(dst *uint64, file string) {
		v, err := readUint(dir, file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		*dst = v
	}
	// cpu.stat usage is kept by the cgroup2 core even without the cpu
	// controller.
	if m.v1["cpuacct"] == nil {
		if st, err := readKeyedAll(dir, "cpu.stat"); err == nil {
			s.CPU.UsageNS = st["usage_usec"] * 1000
			s.CPU.UserNS = st["user_usec"] * 1000
			s.CPU.SystemNS = st["system_usec"] * 1000
			s.CPU.Periods, s.CPU.ThrottledPeriods = st["nr_periods"], st["nr_throttled"]
			s.CPU.ThrottledNS = st["throttled_usec"] * 1000
		} else if !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if m.v2has["memory"] && m.v1["memory"] == nil {
		get(&s.Memory.Usage, "memory.current")
		get(&s.Memory.MaxUsage, "memory.peak")
		get(&s.Memory.Limit, "memory.max")
		get(&s.Memory.SwapUsage, "memory.swap.current")
		if n, err := readKeyed(dir, "memory.events", "oom_kill"); err == nil {
			s.Memory.OOMKills = n
		}
	}
	if m.v2has["pids"] && m.v1["pids"] == nil {
		get(&s.Pids.Current, "pids.current")
		get(&s.Pids.Limit, "pids.max")
	}
	if m.v2has["io"] && m.v1["blkio"] == nil {
		if b, err := os.ReadFile(dir + "/io.stat"); err == nil {
			s.BlkIO = sumIOStat(string(b))
		}
	}
	return errors.Join(errs...)
}

// sumIOStat sums io.stat lines ("8:0 rbytes=1 wbytes=2 rios=3 wios=4
// dbytes=0 dios=0") over devices.
func sumIOStat(s string) BlkIOStats {
	var out BlkIOStats
	for _, line := range strings.Split(s, "\n") {
		for _, kv := range strings.Fields(line) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			switch k {
			case "rbytes":
				out.ReadBytes += n
			case "wbytes":
				out.WriteBytes += n
			case "rios":
				out.ReadOps += n
			case "wios":
				out.WriteOps += n
			}
		}
	}
	return out
}
