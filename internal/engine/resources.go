package engine

import (
	"fmt"
	"math"
	"math/big"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
)

// ResourceOptions are Docker's resource flags (--memory, --cpus, ...), in
// Docker's HostConfig field names and units (bytes, nano-CPUs, µs). The
// zero value of a field means "not given"; pointers are for fields whose
// zero is meaningful. The same struct is persisted in the container's
// record (containerConfig.Resources) and merged by Update.
type ResourceOptions struct {
	CgroupParent string `json:"CgroupParent,omitempty"`

	Memory            int64 `json:"Memory,omitempty"`            // --memory, bytes
	MemorySwap        int64 `json:"MemorySwap,omitempty"`        // --memory-swap: memory+swap, -1 unlimited
	MemoryReservation int64 `json:"MemoryReservation,omitempty"` // --memory-reservation (soft limit)
	MemoryHigh        int64 `json:"MemoryHigh,omitempty"`        // --memory-high, cgroup v2 only
	OomKillDisable    *bool `json:"OomKillDisable,omitempty"`    // --oom-kill-disable, cgroup v1 only

	NanoCPUs   int64  `json:"NanoCpus,omitempty"`   // --cpus × 1e9
	CPUShares  int64  `json:"CpuShares,omitempty"`  // --cpu-shares, v1 weight 2-262144
	CPUPeriod  int64  `json:"CpuPeriod,omitempty"`  // --cpu-period, µs
	CPUQuota   int64  `json:"CpuQuota,omitempty"`   // --cpu-quota, µs, -1 unlimited
	CPUWeight  uint64 `json:"CpuWeight,omitempty"`  // --cpu-weight, cgroup v2 only, 1-10000
	CpusetCpus string `json:"CpusetCpus,omitempty"` // --cpuset-cpus
	CpusetMems string `json:"CpusetMems,omitempty"` // --cpuset-mems

	PidsLimit *int64 `json:"PidsLimit,omitempty"` // --pids-limit, 0 or -1 unlimited

	BlkioWeight          uint16           `json:"BlkioWeight,omitempty"` // --blkio-weight, 10-1000
	IOWeight             uint16           `json:"IOWeight,omitempty"`    // --io-weight, cgroup v2 only, 1-10000
	BlkioDeviceReadBps   []ThrottleDevice `json:"BlkioDeviceReadBps,omitempty"`
	BlkioDeviceWriteBps  []ThrottleDevice `json:"BlkioDeviceWriteBps,omitempty"`
	BlkioDeviceReadIOps  []ThrottleDevice `json:"BlkioDeviceReadIOps,omitempty"`
	BlkioDeviceWriteIOps []ThrottleDevice `json:"BlkioDeviceWriteIOps,omitempty"`

	NetClassID    uint32        `json:"NetClassID,omitempty"`    // --net-cls-classid, v1 net_cls
	NetPriorities []NetPriority `json:"NetPriorities,omitempty"` // --net-prio IFNAME=PRIO, v1 net_prio
}

// ThrottleDevice is a --device-{read,write}-{bps,iops} limit: a block
// device path and bytes (or I/O operations) per second.
type ThrottleDevice struct {
	Path string `json:"Path"`
	Rate uint64 `json:"Rate"`
}

// NetPriority is one --net-prio: a network interface and its priority.
type NetPriority struct {
	Name     string `json:"Name"`
	Priority uint32 `json:"Priority"`
}

// Limits of the values the kernel and Docker accept.
const (
	// MinMemory is the smallest --memory (and --memory-reservation,
	// --memory-high). The runtime charges its init to the limit only from
	// the moment the init is ready (so `--memory 1m busybox true` works),
	// but what init allocates afterwards and the program's first pages
	// must fit: on the development VM `sh -c 'echo hi'` failed 8 times in
	// 20 at 256 KiB, twice at 320 KiB, never from 384 KiB. 512 KiB is
	// also what crun is known to run with.
	MinMemory = 512 << 10
	// DefaultCPUPeriod is the CFS period --cpus is expressed in (µs).
	DefaultCPUPeriod = 100000
	minCPUShares     = 2
	maxCPUShares     = 262144
	minBlkioWeight   = 10
	maxBlkioWeight   = 1000
	minV2Weight      = 1
	maxV2Weight      = 10000
)

// Spec validates the options and returns the runtime-spec resources, nil
// when no limit is asked for. Errors are ErrInvalid (or ErrUnsupported for
// a flag this host's cgroup layout cannot honour) and name the flag. It
// creates nothing: device paths are resolved with stat, and the host's
// cgroup layout, CPUs and memory nodes are read only when a flag needs them.
func (r *ResourceOptions) Spec() (*specs.LinuxResources, error) {
	return r.spec(sysFacts())
}

// hostFacts is what validation needs to know about the host. The Linux
// implementation reads /proc and /sys; unit tests use a fake.
type hostFacts interface {
	// cgroupHost is the host's cgroup layout (cgroups.DetectHost).
	cgroupHost() (*cgroups.Host, error)
	// onlineCPUs and onlineMems are the host's CPU and memory-node lists
	// ("0-3"), as /sys/devices/system/{cpu,node}/online show them.
	onlineCPUs() (string, error)
	onlineMems() (string, error)
	// blockDevice stats path and returns its device numbers; an error
	// when it does not exist or is not a block device.
	blockDevice(path string) (major, minor int64, err error)
}

// isZero reports whether no limit is set (CgroupParent does not count).
func (r *ResourceOptions) isZero() bool {
	c := *r
	c.CgroupParent = ""
	return c.Memory == 0 && c.MemorySwap == 0 && c.MemoryReservation == 0 && c.MemoryHigh == 0 &&
		c.OomKillDisable == nil && c.NanoCPUs == 0 && c.CPUShares == 0 && c.CPUPeriod == 0 &&
		c.CPUQuota == 0 && c.CPUWeight == 0 && c.CpusetCpus == "" && c.CpusetMems == "" &&
		c.PidsLimit == nil && c.BlkioWeight == 0 && c.IOWeight == 0 &&
		len(c.BlkioDeviceReadBps) == 0 && len(c.BlkioDeviceWriteBps) == 0 &&
		len(c.BlkioDeviceReadIOps) == 0 && len(c.BlkioDeviceWriteIOps) == 0 &&
		c.NetClassID == 0 && len(c.NetPriorities) == 0
}

// persisted is what the record keeps: nil when no limit was given.
func (r *ResourceOptions) persisted() *ResourceOptions {
	if r == nil || r.isZero() {
		return nil
	}
	c := *r
	return &c
}

func (r *ResourceOptions) spec(facts hostFacts) (*specs.LinuxResources, error) {
	if err := r.checkStatic(); err != nil {
		return nil, err
	}
	if r.isZero() {
		return nil, nil
	}
	out := &specs.LinuxResources{}
	if err := r.checkHost(facts); err != nil {
		return nil, err
	}

	// Memory. Docker's default for an unset --memory-swap is twice
	// --memory (as much swap as memory).
	if r.Memory != 0 || r.MemorySwap != 0 || r.MemoryReservation != 0 || r.OomKillDisable != nil {
		m := &specs.LinuxMemory{}
		if r.Memory > 0 {
			m.Limit = i64p(r.Memory)
			switch {
			case r.MemorySwap == 0:
				m.Swap = i64p(2 * r.Memory)
			default:
				m.Swap = i64p(r.MemorySwap)
			}
		}
		if r.MemoryReservation > 0 {
			m.Reservation = i64p(r.MemoryReservation)
		}
		if r.OomKillDisable != nil {
			m.DisableOOMKiller = boolPtr(*r.OomKillDisable)
		}
		out.Memory = m
	}

	// CPU.
	if r.NanoCPUs != 0 || r.CPUShares != 0 || r.CPUPeriod != 0 || r.CPUQuota != 0 || r.CpusetCpus != "" || r.CpusetMems != "" {
		c := &specs.LinuxCPU{Cpus: r.CpusetCpus, Mems: r.CpusetMems}
		if r.NanoCPUs > 0 {
			c.Period = u64p(DefaultCPUPeriod)
			c.Quota = i64p(r.NanoCPUs / (1e9 / DefaultCPUPeriod))
		}
		if r.CPUPeriod != 0 {
			c.Period = u64p(uint64(r.CPUPeriod))
		}
		if r.CPUQuota != 0 {
			c.Quota = i64p(r.CPUQuota)
		}
		if r.CPUShares != 0 {
			c.Shares = u64p(uint64(r.CPUShares))
		}
		out.CPU = c
	}

	if r.PidsLimit != nil {
		l := *r.PidsLimit
		if l == 0 {
			l = -1 // Docker: 0 and -1 both mean unlimited
		}
		out.Pids = &specs.LinuxPids{Limit: &l}
	}

	// Block I/O.
	b := &specs.LinuxBlockIO{}
	if r.BlkioWeight != 0 {
		b.Weight = u16p(r.BlkioWeight)
	}
	for _, t := range []struct {
		flag string
		in   []ThrottleDevice
		out  *[]specs.LinuxThrottleDevice
	}{
		{"--device-read-bps", r.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice},
		{"--device-write-bps", r.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{"--device-read-iops", r.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice},
		{"--device-write-iops", r.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			major, minor, err := facts.blockDevice(d.Path)
			if err != nil {
				return nil, errdefs.Invalidf("%s %s: %v", t.flag, d.Path, err)
			}
			*t.out = append(*t.out, specs.LinuxThrottleDevice{
				LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: d.Rate})
		}
	}
	if b.Weight != nil || len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+
		len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0 {
		out.BlockIO = b
	}

	// Network classes (v1 net_cls, net_prio).
	if r.NetClassID != 0 || len(r.NetPriorities) > 0 {
		n := &specs.LinuxNetwork{}
		if r.NetClassID != 0 {
			n.ClassID = u32p(r.NetClassID)
		}
		for _, p := range r.NetPriorities {
			n.Priorities = append(n.Priorities, specs.LinuxInterfacePriority{Name: p.Name, Priority: p.Priority})
		}
		out.Network = n
	}

	// cgroup v2 native knobs.
	if r.MemoryHigh != 0 || r.CPUWeight != 0 || r.IOWeight != 0 {
		out.Unified = map[string]string{}
		if r.MemoryHigh != 0 {
			out.Unified["memory.high"] = strconv.FormatInt(r.MemoryHigh, 10)
		}
		if r.CPUWeight != 0 {
			out.Unified["cpu.weight"] = strconv.FormatUint(r.CPUWeight, 10)
		}
		if r.IOWeight != 0 {
			out.Unified["io.weight"] = "default " + strconv.FormatUint(uint64(r.IOWeight), 10)
		}
	}
	return out, nil
}

// checkStatic validates what needs no knowledge of the host.
func (r *ResourceOptions) checkStatic() error {
	if p := r.CgroupParent; p != "" {
		if strings.ContainsAny(p, "\n\x00") {
			return errdefs.Invalidf("--cgroup-parent %q: invalid character", p)
		}
		if slices.Contains(strings.Split(p, "/"), "..") {
			return errdefs.Invalidf("--cgroup-parent %q: must not contain ..", p)
		}
		if path.Clean("/"+p) == "/" {
			return errdefs.Invalidf("--cgroup-parent %q: must name a cgroup below the root", p)
		}
	}
	if r.Memory < 0 {
		return errdefs.Invalidf("--memory %d: must be a positive size", r.Memory)
	}
	if r.Memory > 0 && r.Memory < MinMemory {
		return errdefs.Invalidf("--memory %s: the minimum memory limit is %s", FormatBytes(r.Memory), FormatBytes(MinMemory))
	}
	switch s := r.MemorySwap; {
	case s == 0:
	case s < -1:
		return errdefs.Invalidf("--memory-swap %d: must be -1 (unlimited) or a size", s)
	case r.Memory == 0:
		return errdefs.Invalidf("--memory-swap: set --memory too (--memory-swap is memory plus swap)")
	case s > 0 && s < r.Memory:
		return errdefs.Invalidf("--memory-swap %s: must be at least --memory %s (it is memory plus swap)", FormatBytes(s), FormatBytes(r.Memory))
	}
	if v := r.MemoryReservation; v < 0 || (v > 0 && v < MinMemory) {
		return errdefs.Invalidf("--memory-reservation %s: the minimum is %s", FormatBytes(v), FormatBytes(MinMemory))
	}
	if v := r.MemoryReservation; v > 0 && r.Memory > 0 && v > r.Memory {
		return errdefs.Invalidf("--memory-reservation %s: must not exceed --memory %s", FormatBytes(v), FormatBytes(r.Memory))
	}
	if v := r.MemoryHigh; v < 0 || (v > 0 && v < MinMemory) {
		return errdefs.Invalidf("--memory-high %s: the minimum is %s", FormatBytes(v), FormatBytes(MinMemory))
	}
	if r.NanoCPUs < 0 {
		return errdefs.Invalidf("--cpus %s: must be positive", FormatCPUs(r.NanoCPUs))
	}
	if r.NanoCPUs > 0 && r.NanoCPUs/(1e9/DefaultCPUPeriod) < 1000 {
		return errdefs.Invalidf("--cpus %s: the minimum is 0.01", FormatCPUs(r.NanoCPUs))
	}
	if r.NanoCPUs > 0 && (r.CPUPeriod != 0 || r.CPUQuota != 0) {
		return errdefs.Invalidf("--cpus: conflicts with --cpu-period and --cpu-quota (set one or the other)")
	}
	if s := r.CPUShares; s != 0 && (s < minCPUShares || s > maxCPUShares) {
		return errdefs.Invalidf("--cpu-shares %d: must be %d-%d", s, minCPUShares, maxCPUShares)
	}
	if p := r.CPUPeriod; p != 0 && (p < 1000 || p > 1000000) {
		return errdefs.Invalidf("--cpu-period %d: must be 1000-1000000 µs (1 ms to 1 s)", p)
	}
	if q := r.CPUQuota; q != 0 && q != -1 && q < 1000 {
		return errdefs.Invalidf("--cpu-quota %d: must be -1 (unlimited) or at least 1000 µs", q)
	}
	if w := r.CPUWeight; w != 0 && (w < minV2Weight || w > maxV2Weight) {
		return errdefs.Invalidf("--cpu-weight %d: must be %d-%d", w, minV2Weight, maxV2Weight)
	}
	if r.CPUWeight != 0 && r.CPUShares != 0 {
		return errdefs.Invalidf("--cpu-weight: conflicts with --cpu-shares (both set cpu.weight on cgroup v2)")
	}
	if _, err := parseCPUList(r.CpusetCpus); err != nil {
		return errdefs.Invalidf("--cpuset-cpus %q: not a CPU list like 0-3,6", r.CpusetCpus)
	}
	if _, err := parseCPUList(r.CpusetMems); err != nil {
		return errdefs.Invalidf("--cpuset-mems %q: not a memory node list like 0-1", r.CpusetMems)
	}
	if r.PidsLimit != nil && *r.PidsLimit < -1 {
		return errdefs.Invalidf("--pids-limit %d: must be positive, or 0 or -1 for unlimited", *r.PidsLimit)
	}
	if w := r.BlkioWeight; w != 0 && (w < minBlkioWeight || w > maxBlkioWeight) {
		return errdefs.Invalidf("--blkio-weight %d: must be %d-%d", w, minBlkioWeight, maxBlkioWeight)
	}
	if w := r.IOWeight; w != 0 && (w < minV2Weight || w > maxV2Weight) {
		return errdefs.Invalidf("--io-weight %d: must be %d-%d", w, minV2Weight, maxV2Weight)
	}
	if r.IOWeight != 0 && r.BlkioWeight != 0 {
		return errdefs.Invalidf("--io-weight: conflicts with --blkio-weight (both set io.weight on cgroup v2)")
	}
	for _, t := range []struct {
		flag string
		devs []ThrottleDevice
	}{
		{"--device-read-bps", r.BlkioDeviceReadBps}, {"--device-write-bps", r.BlkioDeviceWriteBps},
		{"--device-read-iops", r.BlkioDeviceReadIOps}, {"--device-write-iops", r.BlkioDeviceWriteIOps},
	} {
		for _, d := range t.devs {
			if !path.IsAbs(d.Path) {
				return errdefs.Invalidf("%s %q: the device must be an absolute path like /dev/sda", t.flag, d.Path)
			}
		}
	}
	for _, p := range r.NetPriorities {
		if !validIfName(p.Name) {
			return errdefs.Invalidf("--net-prio %q: not a network interface name", p.Name)
		}
	}
	return nil
}

// checkHost validates what depends on the host: its cgroup layout, CPUs
// and memory nodes.
func (r *ResourceOptions) checkHost(facts hostFacts) error {
	var host *cgroups.Host
	layout := func() (*cgroups.Host, error) {
		if host != nil {
			return host, nil
		}
		h, err := facts.cgroupHost()
		if err != nil {
			return nil, err
		}
		host = h
		return h, nil
	}
	// Flags that exist only on one cgroup version.
	for _, f := range []struct {
		set        bool
		flag, ctrl string
		want       cgroups.Version
		file       string
	}{
		{r.MemoryHigh != 0, "--memory-high", "memory", cgroups.V2, "memory.high"},
		{r.CPUWeight != 0, "--cpu-weight", "cpu", cgroups.V2, "cpu.weight"},
		{r.IOWeight != 0, "--io-weight", "io", cgroups.V2, "io.weight"},
		{r.OomKillDisable != nil && *r.OomKillDisable, "--oom-kill-disable", "memory", cgroups.V1, "memory.oom_control"},
	} {
		if !f.set {
			continue
		}
		h, err := layout()
		if err != nil {
			return err
		}
		c, ok := h.Controller(f.ctrl)
		if ok && c.Version == f.want {
			continue
		}
		if f.want == cgroups.V2 {
			where := "it has no " + f.ctrl + " controller"
			if ok {
				where = "its " + f.ctrl + " controller is on cgroup v1"
			}
			return errdefs.Unsupportedf("%s: needs cgroup v2 (%s), but this host is %s and %s", f.flag, f.file, h.Mode, where)
		}
		return errdefs.Unsupportedf("%s: needs cgroup v1 (%s; cgroup v2 cannot disable the OOM killer), but this host is %s", f.flag, f.file, h.Mode)
	}
	for _, f := range []struct {
		set        bool
		flag, ctrl string
	}{
		{r.NetClassID != 0, "--net-cls-classid", "net_cls"},
		{len(r.NetPriorities) > 0, "--net-prio", "net_prio"},
	} {
		if !f.set {
			continue
		}
		h, err := layout()
		if err != nil {
			return err
		}
		if c, ok := h.Controller(f.ctrl); (ok && c.Version == cgroups.V1) || slices.Contains(h.Unmounted, f.ctrl) {
			continue
		}
		return errdefs.Unsupportedf("%s: needs the cgroup v1 %s controller, which this %s host's kernel does not offer", f.flag, f.ctrl, h.Mode)
	}
	if r.NanoCPUs > 0 || r.CpusetCpus != "" {
		online, err := facts.onlineCPUs()
		if err != nil {
			return err
		}
		have, err := parseCPUList(online)
		if err != nil {
			return fmt.Errorf("reading the host's online CPUs %q: %w", online, err)
		}
		if n := int64(len(have)); r.NanoCPUs > n*1e9 {
			return errdefs.Invalidf("--cpus %s: the range of CPUs is 0.01 to %d.00, as this host has %d CPUs", FormatCPUs(r.NanoCPUs), n, n)
		}
		if miss := missing(r.CpusetCpus, have); miss != "" {
			return errdefs.Invalidf("--cpuset-cpus %s: CPU %s not available (this host has %s)", r.CpusetCpus, miss, online)
		}
	}
	if r.CpusetMems != "" {
		online, err := facts.onlineMems()
		if err != nil {
			return err
		}
		have, err := parseCPUList(online)
		if err != nil {
			return fmt.Errorf("reading the host's memory nodes %q: %w", online, err)
		}
		if miss := missing(r.CpusetMems, have); miss != "" {
			return errdefs.Invalidf("--cpuset-mems %s: memory node %s not available (this host has %s)", r.CpusetMems, miss, online)
		}
	}
	return nil
}

// missing returns the members of list (valid list syntax) not in have, as
// a comma list, or "".
func missing(list string, have map[int]bool) string {
	want, _ := parseCPUList(list)
	var out []int
	for i := range want {
		if !have[i] {
			out = append(out, i)
		}
	}
	slices.Sort(out)
	s := make([]string, len(out))
	for i, n := range out {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseCPUList parses the kernel's list format ("0-3,8"; cpuset(7)).
func parseCPUList(s string) (map[int]bool, error) {
	set := map[int]bool{}
	s = strings.TrimSpace(s)
	if s == "" {
		return set, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, fmt.Errorf("bad number %q", lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, fmt.Errorf("bad range %q", part)
			}
		}
		if b > 1<<16 {
			return nil, fmt.Errorf("range %q too large", part)
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	return set, nil
}

// validIfName is the kernel's dev_valid_name.
func validIfName(n string) bool {
	return n != "" && len(n) < 16 && n != "." && n != ".." && !strings.ContainsAny(n, "/: \t\n\x00")
}

var sizeRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)
})

// ParseSize parses a size as Docker's --memory does (go-units
// RAMInBytes): a number with an optional unit b, k, m, g, t or p (binary
// multiples, any case, "kb" and "kib" alike).
func ParseSize(s string) (int64, error) {
	m := sizeRE().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("invalid size %q (want a number with an optional unit b, k, m or g)", s)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	mul := 1.0
	if m[2] != "" {
		mul = math.Pow(1024, float64(strings.Index("kmgtp", strings.ToLower(m[2]))+1))
	}
	v *= mul
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return int64(v), nil
}

// ParseCPUs parses --cpus ("1.5") into nano-CPUs, exactly, as Docker's
// opts.NanoCPUs does.
func ParseCPUs(s string) (int64, error) {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, fmt.Errorf("invalid number of CPUs %q", s)
	}
	n := r.Mul(r, big.NewRat(1e9, 1))
	if !n.IsInt() {
		return 0, fmt.Errorf("%q is too precise (at most 9 decimals)", s)
	}
	if !n.Num().IsInt64() {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n.Num().Int64(), nil
}

// FormatCPUs renders nano-CPUs as --cpus takes them.
func FormatCPUs(n int64) string {
	return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64)
}

// FormatBytes renders a byte count in binary units, as Docker's
// units.BytesSize does ("1.5MiB").
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v := float64(n)
	i := 0
	for math.Abs(v) >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64) + units[i]
}

func i64p(v int64) *int64   { return &v }
func u64p(v uint64) *uint64 { return &v }
func u32p(v uint32) *uint32 { return &v }
func u16p(v uint16) *uint16 { return &v }
func boolPtr(v bool) *bool  { return &v }
