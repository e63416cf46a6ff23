package cgroups

import (
	"regexp"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// validate rejects values no kernel accepts before anything is written, so
// a bad spec leaves the cgroup untouched and the error names the field.
// Values only the host can judge (CPUs that exist, a limit below current
// usage) are checked when written.
func validate(r *specs.LinuxResources) error {
	if m := r.Memory; m != nil {
		for _, f := range []struct {
			name string
			v    *int64
		}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}, {"kernel", m.Kernel}, {"kernelTCP", m.KernelTCP}} {
			if f.v != nil && *f.v < -1 {
				return errdefs.Invalidf("memory.%s %d: must be -1 (unlimited), 0 (unset) or a byte count", f.name, *f.v)
			}
		}
		if l, s := val(m.Limit), val(m.Swap); l > 0 && s > 0 && s < l {
			return errdefs.Invalidf("memory.swap %d: is memory+swap and must be >= memory.limit %d", s, l)
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return errdefs.Invalidf("memory.swappiness %d: must be 0-100", *m.Swappiness)
		}
	}
	if c := r.CPU; c != nil {
		if s := uval(c.Shares); s != 0 && (s < minShares || s > maxShares) {
			return errdefs.Invalidf("cpu.shares %d: must be %d-%d", s, minShares, maxShares)
		}
		if q := val(c.Quota); q != 0 && q != -1 && q < 1000 {
			return errdefs.Invalidf("cpu.quota %d: must be -1 (unlimited) or at least 1000 µs", q)
		}
		if p := uval(c.Period); p != 0 && (p < 1000 || p > 1000000) {
			return errdefs.Invalidf("cpu.period %d: must be 1000-1000000 µs", p)
		}
		if b, q := uval(c.Burst), val(c.Quota); b != 0 && q > 0 && b > uint64(q) {
			return errdefs.Invalidf("cpu.burst %d: must not exceed cpu.quota %d", b, q)
		}
		if i := val(c.Idle); i != 0 && i != 1 {
			return errdefs.Invalidf("cpu.idle %d: must be 0 or 1", i)
		}
		if _, err := parseList(c.Cpus); err != nil {
			return errdefs.Invalidf("cpu.cpus %q: not a CPU list like 0-3,6", c.Cpus)
		}
		if _, err := parseList(c.Mems); err != nil {
			return errdefs.Invalidf("cpu.mems %q: not a memory node list like 0-1", c.Mems)
		}
	}
	if b := r.BlockIO; b != nil {
		if err := checkBlkioWeight("blockIO.weight", b.Weight); err != nil {
			return err
		}
		if err := checkBlkioWeight("blockIO.leafWeight", b.LeafWeight); err != nil {
			return err
		}
		for _, d := range b.WeightDevice {
			if err := checkDevice("blockIO.weightDevice", d.Major, d.Minor); err != nil {
				return err
			}
			if err := checkBlkioWeight("blockIO.weightDevice.weight", d.Weight); err != nil {
				return err
			}
			if err := checkBlkioWeight("blockIO.weightDevice.leafWeight", d.LeafWeight); err != nil {
				return err
			}
		}
		for _, l := range [][]specs.LinuxThrottleDevice{b.ThrottleReadBpsDevice, b.ThrottleWriteBpsDevice, b.ThrottleReadIOPSDevice, b.ThrottleWriteIOPSDevice} {
			for _, d := range l {
				if err := checkDevice("blockIO.throttle", d.Major, d.Minor); err != nil {
					return err
				}
			}
		}
	}
	for _, l := range r.HugepageLimits {
		if !pageSizeRE().MatchString(l.Pagesize) {
			return errdefs.Invalidf("hugepageLimits.pageSize %q: must look like 2MB or 1GB", l.Pagesize)
		}
	}
	if n := r.Network; n != nil {
		for _, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \t\n/") {
				return errdefs.Invalidf("network.priorities: bad interface name %q", p.Name)
			}
		}
	}
	for _, d := range r.Devices {
		if _, err := deviceRule(d); err != nil {
			return err
		}
	}
	for name := range r.Rdma {
		if name == "" || strings.ContainsAny(name, " \t\n") {
			return errdefs.Invalidf("rdma: bad device name %q", name)
		}
	}
	for k := range r.Unified {
		if err := checkUnifiedKey(k); err != nil {
			return err
		}
	}
	return nil
}

// pageSizeRE is compiled on first use, not at every process start.
var pageSizeRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[1-9][0-9]*[KMG]B$`) })

func checkBlkioWeight(name string, w *uint16) error {
	if w != nil && *w != 0 && (*w < minBlkio || *w > maxBlkio) {
		return errdefs.Invalidf("%s %d: must be %d-%d", name, *w, minBlkio, maxBlkio)
	}
	return nil
}

func checkDevice(name string, major, minor int64) error {
	if major < 0 || minor < 0 {
		return errdefs.Invalidf("%s: bad device %d:%d", name, major, minor)
	}
	return nil
}

func checkUnifiedKey(k string) error {
	if k == "" || k == "." || k == ".." || strings.ContainsAny(k, "/\x00\n") || !strings.Contains(k, ".") {
		return errdefs.Invalidf("unified %q: not a cgroup file name", k)
	}
	if k == "cgroup.procs" || k == "cgroup.threads" || k == "cgroup.subtree_control" {
		return errdefs.Invalidf("unified %q: the runtime manages this file", k)
	}
	return nil
}

// deviceRule renders a device cgroup rule in the v1 devices.allow syntax:
// "type major:minor access", "*" for a missing number.
func deviceRule(d specs.LinuxDeviceCgroup) (string, error) {
	t := d.Type
	switch t {
	case "":
		t = "a"
	case "a", "b", "c":
	default:
		return "", errdefs.Invalidf("devices: bad type %q (want a, b or c)", d.Type)
	}
	acc := d.Access
	if acc == "" {
		acc = "rwm"
	}
	for _, c := range acc {
		if c != 'r' && c != 'w' && c != 'm' {
			return "", errdefs.Invalidf("devices: bad access %q (want letters of rwm)", d.Access)
		}
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return itoa(*p)
	}
	return t + " " + num(d.Major) + ":" + num(d.Minor) + " " + acc, nil
}

func val(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func uval(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
