package engine

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
)

// fakeFacts is a host for validation tests: 4 CPUs, 1 memory node, one
// block device /dev/sda (8:0), and the given cgroup layout.
type fakeFacts struct{ host *cgroups.Host }

func (f fakeFacts) cgroupHost() (*cgroups.Host, error) { return f.host, nil }
func (fakeFacts) onlineCPUs() (string, error)          { return "0-3", nil }
func (fakeFacts) onlineMems() (string, error)          { return "0", nil }
func (fakeFacts) blockDevice(p string) (int64, int64, error) {
	if p == "/dev/sda" {
		return 8, 0, nil
	}
	return 0, 0, os.ErrNotExist
}

var (
	hybridHost = &cgroups.Host{Mode: cgroups.Hybrid, Unified: "/sys/fs/cgroup/unified",
		Controllers: map[string]cgroups.Controller{
			"memory": {Version: cgroups.V1, Mount: "/sys/fs/cgroup/memory"},
			"cpu":    {Version: cgroups.V1, Mount: "/sys/fs/cgroup/cpu"},
			"blkio":  {Version: cgroups.V1, Mount: "/sys/fs/cgroup/blkio"},
		},
		Unmounted: []string{"net_cls", "net_prio"}}
	unifiedHost = &cgroups.Host{Mode: cgroups.Unified, Unified: "/sys/fs/cgroup",
		Controllers: map[string]cgroups.Controller{
			"memory": {Version: cgroups.V2, Mount: "/sys/fs/cgroup"},
			"cpu":    {Version: cgroups.V2, Mount: "/sys/fs/cgroup"},
			"io":     {Version: cgroups.V2, Mount: "/sys/fs/cgroup"},
		}}
)

func i64(v int64) *int64 { return &v }
func bp(v bool) *bool    { return &v }

func TestResourceSpecValidation(t *testing.T) {
	tests := []struct {
		name string
		r    ResourceOptions
		host *cgroups.Host
		want string // substring of the error, "" = valid
		cat  error
	}{
		{"empty", ResourceOptions{}, hybridHost, "", nil},
		{"memory", ResourceOptions{Memory: 1 << 20}, hybridHost, "", nil},
		{"memory below minimum", ResourceOptions{Memory: 4096}, hybridHost, "--memory 4KiB", errdefs.ErrInvalid},
		{"swap below memory", ResourceOptions{Memory: 16 << 20, MemorySwap: 8 << 20}, hybridHost, "--memory-swap 8MiB", errdefs.ErrInvalid},
		{"swap without memory", ResourceOptions{MemorySwap: 8 << 20}, hybridHost, "--memory-swap", errdefs.ErrInvalid},
		{"swap unlimited", ResourceOptions{Memory: 16 << 20, MemorySwap: -1}, hybridHost, "", nil},
		{"reservation above memory", ResourceOptions{Memory: 16 << 20, MemoryReservation: 32 << 20}, hybridHost, "--memory-reservation", errdefs.ErrInvalid},
		{"cpus", ResourceOptions{NanoCPUs: 1.5e9}, hybridHost, "", nil},
		{"cpus above host", ResourceOptions{NanoCPUs: 5e9}, hybridHost, "--cpus 5: the range of CPUs is 0.01 to 4.00", errdefs.ErrInvalid},
		{"cpus too small", ResourceOptions{NanoCPUs: 1e6}, hybridHost, "--cpus 0.001", errdefs.ErrInvalid},
		{"cpus and quota", ResourceOptions{NanoCPUs: 1e9, CPUQuota: 50000}, hybridHost, "--cpus: conflicts", errdefs.ErrInvalid},
		{"shares", ResourceOptions{CPUShares: 1}, hybridHost, "--cpu-shares 1", errdefs.ErrInvalid},
		{"period", ResourceOptions{CPUPeriod: 999}, hybridHost, "--cpu-period 999", errdefs.ErrInvalid},
		{"quota", ResourceOptions{CPUQuota: 999}, hybridHost, "--cpu-quota 999", errdefs.ErrInvalid},
		{"quota unlimited", ResourceOptions{CPUQuota: -1}, hybridHost, "", nil},
		{"cpuset", ResourceOptions{CpusetCpus: "0-1,3"}, hybridHost, "", nil},
		{"cpuset outside", ResourceOptions{CpusetCpus: "2-5"}, hybridHost, "--cpuset-cpus 2-5: CPU 4,5 not available (this host has 0-3)", errdefs.ErrInvalid},
		{"cpuset syntax", ResourceOptions{CpusetCpus: "1-"}, hybridHost, "--cpuset-cpus", errdefs.ErrInvalid},
		{"mems outside", ResourceOptions{CpusetMems: "1"}, hybridHost, "--cpuset-mems 1", errdefs.ErrInvalid},
		{"pids", ResourceOptions{PidsLimit: i64(-2)}, hybridHost, "--pids-limit -2", errdefs.ErrInvalid},
		{"blkio weight", ResourceOptions{BlkioWeight: 5}, hybridHost, "--blkio-weight 5", errdefs.ErrInvalid},
		{"device missing", ResourceOptions{BlkioDeviceWriteBps: []ThrottleDevice{{"/dev/nope", 1}}}, hybridHost, "--device-write-bps /dev/nope", errdefs.ErrInvalid},
		{"device relative", ResourceOptions{BlkioDeviceReadIOps: []ThrottleDevice{{"sda", 1}}}, hybridHost, "--device-read-iops", errdefs.ErrInvalid},
		{"memory-high on hybrid", ResourceOptions{MemoryHigh: 64 << 20}, hybridHost, "--memory-high: needs cgroup v2 (memory.high), but this host is hybrid (cgroup v1 + v2) and its memory controller is on cgroup v1", errdefs.ErrUnsupported},
		{"memory-high on v2", ResourceOptions{MemoryHigh: 64 << 20}, unifiedHost, "", nil},
		{"cpu-weight on hybrid", ResourceOptions{CPUWeight: 100}, hybridHost, "--cpu-weight", errdefs.ErrUnsupported},
		{"io-weight on hybrid", ResourceOptions{IOWeight: 100}, hybridHost, "--io-weight: needs cgroup v2 (io.weight), but this host is hybrid (cgroup v1 + v2) and it has no io controller", errdefs.ErrUnsupported},
		{"cpu-weight range", ResourceOptions{CPUWeight: 10001}, unifiedHost, "--cpu-weight 10001", errdefs.ErrInvalid},
		{"cpu-weight and shares", ResourceOptions{CPUWeight: 100, CPUShares: 512}, unifiedHost, "--cpu-weight: conflicts", errdefs.ErrInvalid},
		{"oom-kill-disable on v1", ResourceOptions{OomKillDisable: bp(true)}, hybridHost, "", nil},
		{"oom-kill-disable on v2", ResourceOptions{OomKillDisable: bp(true)}, unifiedHost, "--oom-kill-disable", errdefs.ErrUnsupported},
		{"net_cls unmounted", ResourceOptions{NetClassID: 0x100001}, hybridHost, "", nil},
		{"net_prio on v2", ResourceOptions{NetPriorities: []NetPriority{{"eth0", 1}}}, unifiedHost, "--net-prio: needs the cgroup v1 net_prio controller", errdefs.ErrUnsupported},
		{"net_prio name", ResourceOptions{NetPriorities: []NetPriority{{"a/b", 1}}}, hybridHost, "--net-prio", errdefs.ErrInvalid},
		{"cgroup parent ..", ResourceOptions{CgroupParent: "a/../../b"}, hybridHost, "--cgroup-parent", errdefs.ErrInvalid},
		{"cgroup parent /", ResourceOptions{CgroupParent: "/"}, hybridHost, "--cgroup-parent", errdefs.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.r.spec(fakeFacts{tc.host})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, tc.cat) {
				t.Fatalf("got %v, want %v containing %q", err, tc.cat, tc.want)
			}
		})
	}
}

func TestResourceSpecConversion(t *testing.T) {
	r := ResourceOptions{
		Memory: 64 << 20, MemoryReservation: 32 << 20, NanoCPUs: 5e8, CPUShares: 512,
		CpusetCpus: "0-1", PidsLimit: i64(0), BlkioWeight: 300,
		BlkioDeviceWriteBps: []ThrottleDevice{{"/dev/sda", 1 << 20}},
		BlkioDeviceReadIOps: []ThrottleDevice{{"/dev/sda", 100}},
		NetClassID:          0x100001, NetPriorities: []NetPriority{{"lo", 5}},
	}
	s, err := r.spec(fakeFacts{hybridHost})
	if err != nil {
		t.Fatal(err)
	}
	if *s.Memory.Limit != 64<<20 || *s.Memory.Swap != 128<<20 || *s.Memory.Reservation != 32<<20 {
		t.Errorf("memory %+v: want limit 64M, swap (memory+swap) twice that, reservation 32M", s.Memory)
	}
	if *s.CPU.Quota != 50000 || *s.CPU.Period != 100000 || *s.CPU.Shares != 512 || s.CPU.Cpus != "0-1" {
		t.Errorf("cpu %+v", s.CPU)
	}
	if *s.Pids.Limit != -1 {
		t.Errorf("--pids-limit 0 gave %d, want -1 (unlimited)", *s.Pids.Limit)
	}
	if *s.BlockIO.Weight != 300 || len(s.BlockIO.ThrottleWriteBpsDevice) != 1 ||
		s.BlockIO.ThrottleWriteBpsDevice[0].Major != 8 || s.BlockIO.ThrottleWriteBpsDevice[0].Rate != 1<<20 ||
		s.BlockIO.ThrottleReadIOPSDevice[0].Rate != 100 {
		t.Errorf("blockIO %+v", s.BlockIO)
	}
	if *s.Network.ClassID != 0x100001 || s.Network.Priorities[0].Name != "lo" || s.Network.Priorities[0].Priority != 5 {
		t.Errorf("network %+v", s.Network)
	}
	if s.Unified != nil {
		t.Errorf("unified %v on a v1 conversion", s.Unified)
	}

	v2 := ResourceOptions{MemoryHigh: 1 << 30, CPUWeight: 200, IOWeight: 50, Memory: 2 << 30, MemorySwap: -1}
	s, err = v2.spec(fakeFacts{unifiedHost})
	if err != nil {
		t.Fatal(err)
	}
	if s.Unified["memory.high"] != "1073741824" || s.Unified["cpu.weight"] != "200" || s.Unified["io.weight"] != "default 50" || *s.Memory.Swap != -1 {
		t.Errorf("v2 knobs: %v, swap %d", s.Unified, *s.Memory.Swap)
	}
	if s, err := (&ResourceOptions{CgroupParent: "/x"}).spec(fakeFacts{hybridHost}); s != nil || err != nil {
		t.Errorf("no limits: %+v, %v; want nil, nil", s, err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1": 1, "1b": 1, "1k": 1024, "1K": 1024, "1kb": 1024, "1KiB": 1024, "512m": 512 << 20,
		"1.5g": 3 << 29, "1 GB": 1 << 30, "2t": 2 << 40,
	} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1x", "1.2.3m", "m", "99999999999p"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) succeeded", in)
		}
	}
}

func TestParseCPUs(t *testing.T) {
	for in, want := range map[string]int64{"1": 1e9, "0.5": 5e8, "1.25": 125e7, "0.000000001": 1, "2.000": 2e9} {
		if got, err := ParseCPUs(in); err != nil || got != want {
			t.Errorf("ParseCPUs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "half", "0.0000000001", "1e100"} {
		if _, err := ParseCPUs(in); err == nil {
			t.Errorf("ParseCPUs(%q) succeeded", in)
		}
	}
	if s := FormatCPUs(15e8); s != "1.5" {
		t.Errorf("FormatCPUs = %q", s)
	}
}

func TestMergeUpdate(t *testing.T) {
	old := ResourceOptions{Memory: 16 << 20, NanoCPUs: 5e8, CPUShares: 512,
		BlkioDeviceWriteBps: []ThrottleDevice{{"/dev/sda", 1}, {"/dev/sdb", 2}}}
	n, err := old.merge(&ResourceOptions{Memory: 64 << 20, CPUQuota: 20000, CPUWeight: 50,
		BlkioDeviceWriteBps: []ThrottleDevice{{"/dev/sdb", 0}, {"/dev/sdc", 3}}, PidsLimit: i64(10)})
	if err != nil {
		t.Fatal(err)
	}
	if n.Memory != 64<<20 || n.MemorySwap != 0 {
		t.Errorf("memory %d swap %d: want 64M with the default swap", n.Memory, n.MemorySwap)
	}
	if n.NanoCPUs != 0 || n.CPUQuota != 20000 || n.CPUPeriod != DefaultCPUPeriod {
		t.Errorf("--cpu-quota after --cpus: nano %d quota %d period %d", n.NanoCPUs, n.CPUQuota, n.CPUPeriod)
	}
	if n.CPUShares != 0 || n.CPUWeight != 50 {
		t.Errorf("--cpu-weight after --cpu-shares: shares %d weight %d", n.CPUShares, n.CPUWeight)
	}
	if d := n.BlkioDeviceWriteBps; len(d) != 3 || d[1].Rate != 0 || d[2].Path != "/dev/sdc" {
		t.Errorf("device limits %+v", d)
	}
	if *n.PidsLimit != 10 || old.PidsLimit != nil {
		t.Errorf("pids %v (old %v)", n.PidsLimit, old.PidsLimit)
	}
	n, _ = n.merge(&ResourceOptions{NanoCPUs: 1e9})
	if n.NanoCPUs != 1e9 || n.CPUQuota != 0 || n.CPUPeriod != 0 {
		t.Errorf("--cpus after --cpu-quota: nano %d quota %d period %d", n.NanoCPUs, n.CPUQuota, n.CPUPeriod)
	}
	explicit := ResourceOptions{Memory: 16 << 20, MemorySwap: 32 << 20}
	if _, err := explicit.merge(&ResourceOptions{Memory: 64 << 20}); err == nil || !strings.Contains(err.Error(), "--memory-swap") {
		t.Errorf("memory above an explicit memory-swap: %v", err)
	}
	if _, err := explicit.merge(&ResourceOptions{CgroupParent: "x"}); err == nil {
		t.Error("--cgroup-parent changed by update")
	}
}

func TestHostViewHidesOurNetMount(t *testing.T) {
	ours := NetCgroupDir + "/net_cls,net_prio"
	h := &cgroups.Host{Mode: cgroups.Hybrid, Unified: "/sys/fs/cgroup",
		Hierarchies: []cgroups.Hierarchy{
			{Version: cgroups.V1, Mount: "/sys/fs/cgroup/systemd", Controllers: []string{"name=systemd"}},
			{Version: cgroups.V1, Mount: ours, Controllers: []string{"net_cls", "net_prio"}},
			{Version: cgroups.V2, Mount: "/sys/fs/cgroup", Controllers: []string{"memory", "cpu"}},
		},
		Controllers: map[string]cgroups.Controller{
			"name=systemd": {Version: cgroups.V1, Mount: "/sys/fs/cgroup/systemd"},
			"net_cls":      {Version: cgroups.V1, Mount: ours}, "net_prio": {Version: cgroups.V1, Mount: ours},
			"memory": {Version: cgroups.V2, Mount: "/sys/fs/cgroup"}, "cpu": {Version: cgroups.V2, Mount: "/sys/fs/cgroup"},
		}}
	v := hostView(h, false)
	if v.Mode != cgroups.Unified || len(v.Hierarchies) != 2 {
		t.Errorf("view: mode %v, %d hierarchies; want unified, 2", v.Mode, len(v.Hierarchies))
	}
	if _, ok := v.Controllers["net_cls"]; ok || len(v.Unmounted) != 2 {
		t.Errorf("view keeps net_cls: %v, unmounted %v", v.Controllers, v.Unmounted)
	}
	k := hostView(h, true)
	if k.Mode != cgroups.Unified || len(k.Hierarchies) != 3 || k.Controllers["net_cls"].Mount != ours {
		t.Errorf("keep view: %+v", k)
	}
	if h.Mode != cgroups.Hybrid || len(h.Hierarchies) != 3 {
		t.Error("hostView changed its argument")
	}
	if hostView(hybridHost, false) != hybridHost {
		t.Error("a host without our mount was copied")
	}
}

func TestCPUPercent(t *testing.T) {
	t0 := time.Now()
	prev := &StatsSample{ID: "a", Read: t0, CPUNanos: 1e9}
	cur := &StatsSample{ID: "a", Read: t0.Add(2 * time.Second), CPUNanos: 2e9}
	if p := CPUPercent(prev, cur); p != 50 {
		t.Errorf("1 s of CPU in 2 s = %v%%, want 50", p)
	}
	cur.CPUNanos = 5e9
	if p := CPUPercent(prev, cur); p != 200 {
		t.Errorf("two full CPUs = %v%%, want 200", p)
	}
	if p := CPUPercent(nil, cur); p != 0 {
		t.Errorf("no previous sample: %v", p)
	}
	if p := (&StatsSample{MemUsage: 25, MemLimit: 100}).MemPercent(); p != 25 {
		t.Errorf("MemPercent = %v", p)
	}
}
