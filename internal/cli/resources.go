package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cfs-org/cfs/internal/engine"
)

// addResourceFlags registers Docker's resource flags on a run/create
// command: the limits and --cgroup-parent.
func addResourceFlags(f *pflag.FlagSet, r *engine.ResourceOptions) {
	f.StringVar(&r.CgroupParent, "cgroup-parent", "", "parent cgroup for the container (default /cfs)")
	addLimitFlags(f, r)
}

// addLimitFlags registers the limits that `cfs update` can change too.
// Values are parsed here (malformed ones fail naming the flag); ranges and
// what the host can do are checked by ResourceOptions.Spec.
func addLimitFlags(f *pflag.FlagSet, r *engine.ResourceOptions) {
	f.VarP(&sizeValue{p: &r.Memory}, "memory", "m", "memory limit (e.g. 512m, 1g)")
	f.Var(&sizeValue{p: &r.MemorySwap, minusOne: true}, "memory-swap", "memory plus swap limit; -1 for unlimited swap (default twice --memory)")
	f.Var(&sizeValue{p: &r.MemoryReservation}, "memory-reservation", "memory soft limit")
	f.Var(&sizeValue{p: &r.MemoryHigh}, "memory-high", "memory throttling threshold, cgroup v2 only (memory.high)")
	f.VarPF(&optBool{p: &r.OomKillDisable}, "oom-kill-disable", "", "disable the OOM killer (cgroup v1 only)").NoOptDefVal = "true"
	f.Var(&cpusValue{p: &r.NanoCPUs}, "cpus", "number of CPUs (e.g. 1.5)")
	f.Int64VarP(&r.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight, 2-262144; default 1024)")
	f.Int64Var(&r.CPUPeriod, "cpu-period", 0, "CPU CFS period in µs (1000-1000000)")
	f.Int64Var(&r.CPUQuota, "cpu-quota", 0, "CPU CFS quota in µs per period (-1 for unlimited)")
	f.Uint64Var(&r.CPUWeight, "cpu-weight", 0, "CPU weight, cgroup v2 only (1-10000; default 100)")
	f.StringVar(&r.CpusetCpus, "cpuset-cpus", "", "CPUs the container may use (0-3, 0,1)")
	f.StringVar(&r.CpusetMems, "cpuset-mems", "", "memory nodes the container may use (0-3, 0,1)")
	f.Var(&pidsValue{p: &r.PidsLimit}, "pids-limit", "maximum number of tasks (0 or -1 for unlimited)")
	f.Uint16Var(&r.BlkioWeight, "blkio-weight", 0, "block I/O weight (10-1000)")
	f.Uint16Var(&r.IOWeight, "io-weight", 0, "I/O weight, cgroup v2 only (1-10000; default 100)")
	f.Var(&throttleValue{p: &r.BlkioDeviceReadBps, bytes: true}, "device-read-bps", "limit reads from a device: DEVICE:RATE in bytes per second (e.g. /dev/sda:1mb)")
	f.Var(&throttleValue{p: &r.BlkioDeviceWriteBps, bytes: true}, "device-write-bps", "limit writes to a device: DEVICE:RATE in bytes per second")
	f.Var(&throttleValue{p: &r.BlkioDeviceReadIOps}, "device-read-iops", "limit reads from a device: DEVICE:RATE in I/O operations per second")
	f.Var(&throttleValue{p: &r.BlkioDeviceWriteIOps}, "device-write-iops", "limit writes to a device: DEVICE:RATE in I/O operations per second")
	f.Var(&classIDValue{p: &r.NetClassID}, "net-cls-classid", "net_cls class of the container's packets (0xAAAABBBB: tc major:minor; cgroup v1 net_cls)")
	f.Var(&netPrioValue{p: &r.NetPriorities}, "net-prio", "priority of the container's packets on an interface: IFNAME=PRIO (cgroup v1 net_prio)")
}

// sizeValue is a byte size flag in Docker's units (512m, 1g, 1.5GiB).
type sizeValue struct {
	p        *int64
	minusOne bool // -1 allowed (unlimited)
}

func (v *sizeValue) Set(s string) error {
	if v.minusOne && strings.TrimSpace(s) == "-1" {
		*v.p = -1
		return nil
	}
	n, err := engine.ParseSize(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (v *sizeValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return strconv.FormatInt(*v.p, 10)
}

func (v *sizeValue) Type() string { return "bytes" }

type cpusValue struct{ p *int64 }

func (v *cpusValue) Set(s string) error {
	n, err := engine.ParseCPUs(s)
	if err != nil {
		return err
	}
	*v.p = n
	return nil
}

func (v *cpusValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return engine.FormatCPUs(*v.p)
}

func (v *cpusValue) Type() string { return "decimal" }

// pidsValue is an int64 flag that records whether it was given.
type pidsValue struct{ p **int64 }

func (v *pidsValue) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return fmt.Errorf("not a number: %q", s)
	}
	*v.p = &n
	return nil
}

func (v *pidsValue) String() string {
	if v.p == nil || *v.p == nil {
		return ""
	}
	return strconv.FormatInt(**v.p, 10)
}

func (v *pidsValue) Type() string { return "int" }

// optBool is a bool flag that records whether it was given.
type optBool struct{ p **bool }

func (v *optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("not a boolean: %q", s)
	}
	*v.p = &b
	return nil
}

func (v *optBool) String() string {
	if v.p == nil || *v.p == nil {
		return "false"
	}
	return strconv.FormatBool(**v.p)
}

func (v *optBool) Type() string { return "bool" }

// IsBoolFlag lets the flag stand alone (--oom-kill-disable).
func (v *optBool) IsBoolFlag() bool { return true }

// throttleValue is a repeatable DEVICE:RATE flag.
type throttleValue struct {
	p     *[]engine.ThrottleDevice
	bytes bool // RATE is a size (bps), else a count (iops)
}

func (v *throttleValue) Set(s string) error {
	dev, rate, ok := cutLast(s, ":")
	if !ok || dev == "" || rate == "" {
		return fmt.Errorf("want DEVICE:RATE, like /dev/sda:1mb, got %q", s)
	}
	if !strings.HasPrefix(dev, "/") {
		return fmt.Errorf("device %q: must be an absolute path like /dev/sda", dev)
	}
	var n uint64
	if v.bytes {
		b, err := engine.ParseSize(rate)
		if err != nil {
			return err
		}
		n = uint64(b)
	} else {
		var err error
		if n, err = strconv.ParseUint(rate, 10, 64); err != nil {
			return fmt.Errorf("rate %q: not a whole number of operations per second", rate)
		}
	}
	*v.p = append(*v.p, engine.ThrottleDevice{Path: dev, Rate: n})
	return nil
}

func (v *throttleValue) String() string {
	if v.p == nil {
		return "[]"
	}
	var out []string
	for _, d := range *v.p {
		out = append(out, fmt.Sprintf("%s:%d", d.Path, d.Rate))
	}
	return "[" + strings.Join(out, ",") + "]"
}

func (v *throttleValue) Type() string { return "list" }

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

type classIDValue struct{ p *uint32 }

func (v *classIDValue) Set(s string) error {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 0, 32)
	if err != nil {
		return fmt.Errorf("want a 32-bit class ID like 0x100001, got %q", s)
	}
	*v.p = uint32(n)
	return nil
}

func (v *classIDValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return fmt.Sprintf("%#x", *v.p)
}

func (v *classIDValue) Type() string { return "classid" }

type netPrioValue struct{ p *[]engine.NetPriority }

func (v *netPrioValue) Set(s string) error {
	name, prio, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want IFNAME=PRIO, like eth0=5, got %q", s)
	}
	n, err := strconv.ParseUint(prio, 10, 32)
	if err != nil {
		return fmt.Errorf("priority %q: not a whole number", prio)
	}
	*v.p = append(*v.p, engine.NetPriority{Name: name, Priority: uint32(n)})
	return nil
}

func (v *netPrioValue) String() string {
	if v.p == nil {
		return "[]"
	}
	var out []string
	for _, p := range *v.p {
		out = append(out, fmt.Sprintf("%s=%d", p.Name, p.Priority))
	}
	return "[" + strings.Join(out, ",") + "]"
}

func (v *netPrioValue) Type() string { return "list" }
