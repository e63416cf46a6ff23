package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func TestFakeLifecycle(t *testing.T) {
	for _, fixture := range []string{"hybrid-host", "v1", "v2", "systemd-hybrid"} {
		t.Run(fixture, func(t *testing.T) {
			ft := newFakeTree(t, fixture, "cpu io memory pids")
			m := ft.created("/cfs/c1")

			paths := m.Paths()
			for _, h := range ft.host.Hierarchies {
				dir := filepath.Join(h.Mount, "cfs", "c1")
				if st, err := os.Stat(dir); err != nil || !st.IsDir() {
					t.Errorf("no cgroup in %s: %v", h.Mount, err)
				}
				for _, c := range h.Controllers {
					if paths[c] != dir {
						t.Errorf("Paths()[%q] = %q, want %q", c, paths[c], dir)
					}
				}
				if h.Version == V2 && paths["unified"] != dir {
					t.Errorf("Paths()[unified] = %q, want %q", paths["unified"], dir)
				}
			}
			if h := m.v1["cpuset"]; h != nil {
				parent := filepath.Dir(h.dir)
				if got := ft.read(parent, "cpuset.cpus"); got != "0-3" {
					t.Errorf("parent cpuset.cpus = %q, want copied 0-3", got)
				}
				if got := ft.read(parent, "cgroup.clone_children"); got != "1" {
					t.Errorf("parent clone_children = %q", got)
				}
				if got := ft.read(h.dir, "cpuset.mems"); got != "0" {
					t.Errorf("cpuset.mems = %q, want 0", got)
				}
			}
			if m.v2 != nil && ft.host.Mode == Unified {
				// The parent we created hands down what the root enabled.
				if got := ft.read(filepath.Dir(m.v2.dir), "cgroup.subtree_control"); got != "+cpu +io +memory +pids" {
					t.Errorf("parent subtree_control = %q", got)
				}
			}

			// Create is idempotent.
			if err := m.Create(); err != nil {
				t.Fatalf("second Create: %v", err)
			}
			if err := m.Add(4242); err != nil {
				t.Fatalf("Add: %v", err)
			}
			for _, h := range m.hiers {
				if got := ft.read(h.dir, "cgroup.procs"); got != "4242" {
					t.Errorf("%s/cgroup.procs = %q", h.dir, got)
				}
			}
			pids, err := m.Pids()
			if err != nil || !slices.Equal(pids, []int{4242}) {
				t.Errorf("Pids() = %v, %v", pids, err)
			}

			// A second container keeps the parent alive.
			m2 := ft.created("/cfs/c2")
			ft.emptyDirs()
			if err := m.Destroy(); err != nil {
				t.Fatalf("Destroy: %v", err)
			}
			for _, h := range ft.host.Hierarchies {
				if _, err := os.Stat(filepath.Join(h.Mount, "cfs", "c1")); !os.IsNotExist(err) {
					t.Errorf("cgroup left in %s: %v", h.Mount, err)
				}
				if _, err := os.Stat(filepath.Join(h.Mount, "cfs", "c2")); err != nil {
					t.Errorf("sibling removed in %s: %v", h.Mount, err)
				}
			}
			if err := m.Destroy(); err != nil {
				t.Errorf("Destroy of a missing cgroup: %v", err)
			}
			if err := m2.Destroy(); err != nil {
				t.Fatalf("Destroy c2: %v", err)
			}
			// The parent stays until RemoveParent.
			for _, h := range ft.host.Hierarchies {
				if _, err := os.Stat(filepath.Join(h.Mount, "cfs")); err != nil {
					t.Errorf("parent removed by Destroy in %s: %v", h.Mount, err)
				}
			}
			if err := RemoveParent(ft.host, "/cfs/c2", nil); err != nil {
				t.Fatalf("RemoveParent: %v", err)
			}
			for _, h := range ft.host.Hierarchies {
				if _, err := os.Stat(filepath.Join(h.Mount, "cfs")); !os.IsNotExist(err) {
					t.Errorf("empty parent left in %s: %v", h.Mount, err)
				}
			}

			// Every change went to the tracer.
			out := ft.trace.String()
			for _, want := range []string{"mkdir " + ft.root, "cgroup.procs = \"4242\"", "rmdir " + ft.root} {
				if !strings.Contains(out, want) {
					t.Errorf("trace lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestFakeOptionalHierarchy(t *testing.T) {
	ft := newFakeTree(t, "hybrid-host", "")
	// Break the cgroup2 mount and the name=systemd one: the container
	// must still start, without them.
	for _, h := range ft.host.Hierarchies {
		if h.Version == V2 || contains(h.Controllers, "name=systemd") {
			if err := os.RemoveAll(h.Mount); err != nil {
				t.Fatal(err)
			}
		}
	}
	m := ft.created("/cfs/c1")
	if err := m.Add(7); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if !strings.Contains(ft.trace.String(), "skip optional hierarchy") {
		t.Errorf("skip not traced:\n%s", ft.trace.String())
	}
	err := m.Set(&specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 21}}})
	if !errors.Is(err, errdefs.ErrUnsupported) || !strings.Contains(err.Error(), "could not be joined") {
		t.Errorf("hugepage Set on skipped cgroup2: %v", err)
	}
	ft.emptyDirs()
	if err := m.Destroy(); err != nil {
		t.Errorf("Destroy: %v", err)
	}
}

// setCase is a Set call and the files it must leave. Files are
// "controller:file", resolved through Paths().
type setCase struct {
	name  string
	r     specs.LinuxResources
	files map[string]string
}

func runSetCases(t *testing.T, fixture, rootSubtree string, cases []setCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ft := newFakeTree(t, fixture, rootSubtree)
			m := ft.created("/cfs/c1")
			if err := m.Set(&tc.r); err != nil {
				t.Fatalf("Set: %v", err)
			}
			for key, want := range tc.files {
				ctrl, file, _ := strings.Cut(key, ":")
				dir, ok := m.Paths()[ctrl]
				if !ok {
					t.Fatalf("no path for %q", ctrl)
				}
				if got := ft.read(dir, file); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		})
	}
}

func TestFakeSetV1(t *testing.T) {
	runSetCases(t, "v1", "", []setCase{
		{"memory", specs.LinuxResources{Memory: &specs.LinuxMemory{
			Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20), Swappiness: u64(10),
			DisableOOMKiller: boolp(true), KernelTCP: i64(1 << 20), Kernel: i64(1 << 20), UseHierarchy: boolp(true),
		}}, map[string]string{
			"memory:memory.limit_in_bytes":          "67108864",
			"memory:memory.memsw.limit_in_bytes":    "134217728",
			"memory:memory.soft_limit_in_bytes":     "33554432",
			"memory:memory.swappiness":              "10",
			"memory:memory.oom_control":             "1",
			"memory:memory.kmem.tcp.limit_in_bytes": "1048576",
			"memory:memory.use_hierarchy":           "1",
		}},
		{"memory unlimited takes memsw along", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}}, map[string]string{
			"memory:memory.limit_in_bytes":       "-1",
			"memory:memory.memsw.limit_in_bytes": "-1",
		}},
		{"cpu", specs.LinuxResources{CPU: &specs.LinuxCPU{
			Shares: u64(512), Quota: i64(50000), Period: u64(200000), Burst: u64(10000),
			RealtimePeriod: u64(900000), RealtimeRuntime: i64(1000), Idle: i64(1),
		}}, map[string]string{
			"cpu:cpu.shares":        "512",
			"cpu:cpu.cfs_quota_us":  "50000",
			"cpu:cpu.cfs_period_us": "200000",
			"cpu:cpu.cfs_burst_us":  "10000",
			"cpu:cpu.rt_period_us":  "900000",
			"cpu:cpu.rt_runtime_us": "1000",
			"cpu:cpu.idle":          "1",
		}},
		{"cpuset", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "1-2", Mems: "0"}}, map[string]string{
			"cpuset:cpuset.cpus": "1-2",
			"cpuset:cpuset.mems": "0",
		}},
		{"pids", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}}, map[string]string{"pids:pids.max": "5"}},
		{"pids unlimited", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}, map[string]string{"pids:pids.max": "max"}},
		{"pids zero is unlimited", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}, map[string]string{"pids:pids.max": "max"}},
		{"blkio on bfq", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
			Weight:                  u16(500),
			WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(300)}},
			ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}},
			ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 253, Minor: 1}, Rate: 100}},
		}}, map[string]string{
			"blkio:blkio.bfq.weight":                 "500",
			"blkio:blkio.bfq.weight_device":          "8:0 300",
			"blkio:blkio.throttle.read_bps_device":   "8:0 1048576",
			"blkio:blkio.throttle.write_iops_device": "253:1 100",
			"blkio:blkio.throttle.write_bps_device":  "",
			"blkio:blkio.throttle.read_iops_device":  "",
		}},
		{"hugetlb", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}, {Pagesize: "1GB", Limit: 1 << 30}}}, map[string]string{
			"hugetlb:hugetlb.2MB.limit_in_bytes":      "4194304",
			"hugetlb:hugetlb.2MB.rsvd.limit_in_bytes": "4194304",
			"hugetlb:hugetlb.1GB.limit_in_bytes":      "1073741824",
		}},
		{"network", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(0x100001), Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 1}, {Name: "eth0", Priority: 5}}}}, map[string]string{
			"net_cls:net_cls.classid":     "1048577",
			"net_prio:net_prio.ifpriomap": "eth0 5", // one write per interface; the fake keeps the last
		}},
		{"devices", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		}}, map[string]string{
			"devices:devices.deny":  "a *:* rwm",
			"devices:devices.allow": "c 1:3 rwm",
		}},
	})
}

func TestFakeSetV2(t *testing.T) {
	runSetCases(t, "v2", "cpu cpuset io memory pids hugetlb rdma", []setCase{
		{"memory", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20), Kernel: i64(1)}}, map[string]string{
			"memory:memory.max":      "67108864",
			"memory:memory.swap.max": "67108864", // memsw 128M - mem 64M
			"memory:memory.low":      "33554432",
		}},
		{"memory unlimited", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1)}}, map[string]string{
			"memory:memory.max":      "max",
			"memory:memory.swap.max": "max",
		}},
		{"memory no swap", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(20 << 20), Swap: i64(20 << 20)}}, map[string]string{
			"memory:memory.max":      "20971520",
			"memory:memory.swap.max": "0", // memsw == memory: no swap
		}},
		{"cpu", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Burst: u64(1000)}}, map[string]string{
			"cpu:cpu.weight":    "100",
			"cpu:cpu.max":       "50000 100000",
			"cpu:cpu.max.burst": "1000",
		}},
		{"cpu shares 2", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(2)}}, map[string]string{"cpu:cpu.weight": "1"}},
		{"cpu period keeps quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(50000)}}, map[string]string{"cpu:cpu.max": "max 50000"}},
		{"cpu quota keeps period", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(20000)}}, map[string]string{"cpu:cpu.max": "20000 100000"}},
		{"cpu idle skips weight", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(1), Shares: u64(2048)}}, map[string]string{
			"cpu:cpu.idle":   "1",
			"cpu:cpu.weight": "100",
		}},
		{"cpuset", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0,3", Mems: "0"}}, map[string]string{
			"cpuset:cpuset.cpus": "0,3",
			"cpuset:cpuset.mems": "0",
		}},
		{"pids", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}}, map[string]string{"pids:pids.max": "5"}},
		{"io weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500)}}, map[string]string{"io:io.weight": "default 4950"}},
		{"io device weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: u16(300)}}}}, map[string]string{"io:io.weight": "8:0 2930"}},
		{"io throttle", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}}}}, map[string]string{"io:io.max": "8:0 rbps=1048576"}},
		{"io throttle removed", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 0}}}}, map[string]string{"io:io.max": "8:0 wiops=max"}},
		{"hugetlb", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}}, map[string]string{
			"hugetlb:hugetlb.2MB.max":      "4194304",
			"hugetlb:hugetlb.2MB.rsvd.max": "4194304",
		}},
		{"rdma", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx4_0": {HcaHandles: u32(2), HcaObjects: u32(2000)}}}, map[string]string{"rdma:rdma.max": "mlx4_0 hca_handle=2 hca_object=2000"}},
		{"unified", specs.LinuxResources{Unified: map[string]string{"memory.high": "50000000", "cgroup.max.depth": "3"}}, map[string]string{
			"unified:memory.high":      "50000000",
			"unified:cgroup.max.depth": "3",
		}},
		{"devices ignored", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}, nil},
	})
}

func TestFakeSetHybrid(t *testing.T) {
	runSetCases(t, "hybrid-host", "hugetlb", []setCase{
		{"memory on v1, hugetlb on v2", specs.LinuxResources{
			Memory:         &specs.LinuxMemory{Limit: i64(64 << 20)},
			HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 2 << 20}},
			Unified:        map[string]string{"hugetlb.1GB.max": "0"},
		}, map[string]string{
			"memory:memory.limit_in_bytes": "67108864",
			"hugetlb:hugetlb.2MB.max":      "2097152",
			"unified:hugetlb.1GB.max":      "0",
		}},
		{"pids and cpu on v1", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}, CPU: &specs.LinuxCPU{Shares: u64(2048)}}, map[string]string{
			"pids:pids.max":  "5",
			"cpu:cpu.shares": "2048",
		}},
	})
}

func TestFakeIOBFQ(t *testing.T) {
	ft := newFakeTree(t, "v2", "io")
	m := ft.created("/cfs/c1")
	ft.write(m.v2.dir, "io.bfq.weight", "default 100")
	if err := m.Set(&specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(500)}}); err != nil {
		t.Fatal(err)
	}
	// BFQ takes the v1 range unconverted.
	if got := ft.read(m.v2.dir, "io.bfq.weight"); got != "500" {
		t.Errorf("io.bfq.weight = %q", got)
	}
}

// With nothing enabled at the cgroup2 root (a v2 host without systemd), a
// memory limit enables the controller from the root down, once.
func TestFakeEnableV2(t *testing.T) {
	ft := newFakeTree(t, "v2", "")
	m := ft.created("/cfs/c1")
	ft.trace.Reset()
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}}); err != nil {
		t.Fatal(err)
	}
	out := ft.trace.String()
	for _, dir := range []string{ft.host.Unified, ft.host.Unified + "/cfs"} {
		want := fmt.Sprintf("write %s/cgroup.subtree_control = \"+memory\"", dir)
		if !strings.Contains(out, want) {
			t.Errorf("trace lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "/cfs/c1/cgroup.subtree_control") {
		t.Errorf("enabled controllers in the leaf (it could then hold no processes):\n%s", out)
	}
	ft.trace.Reset()
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 29)}}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(ft.trace.String(), "subtree_control") {
		t.Errorf("enabled again:\n%s", ft.trace.String())
	}
}

// v1 keeps memory.limit <= memsw.limit after every write.
func TestFakeMemoryOrderV1(t *testing.T) {
	ft := newFakeTree(t, "v1", "")
	m := ft.created("/cfs/c1")
	dir := m.v1["memory"].dir
	ft.write(dir, "memory.limit_in_bytes", "100")
	ft.write(dir, "memory.memsw.limit_in_bytes", "200")
	order := func() []string {
		var files []string
		for _, l := range strings.Split(ft.trace.String(), "\n") {
			// "... write <file> = <value>"; the tracer's prefix format
			// is not ours to rely on.
			if _, rest, ok := strings.Cut(l, " write "); ok && strings.Contains(rest, "limit_in_bytes") {
				files = append(files, filepath.Base(strings.Fields(rest)[0]))
			}
		}
		ft.trace.Reset()
		return files
	}
	ft.trace.Reset()
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(300), Swap: i64(400)}}); err != nil {
		t.Fatal(err)
	}
	if got, want := order(), []string{"memory.memsw.limit_in_bytes", "memory.limit_in_bytes"}; !slices.Equal(got, want) {
		t.Errorf("raising: order %v, want %v", got, want)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(50), Swap: i64(80)}}); err != nil {
		t.Fatal(err)
	}
	if got, want := order(), []string{"memory.limit_in_bytes", "memory.memsw.limit_in_bytes"}; !slices.Equal(got, want) {
		t.Errorf("lowering: order %v, want %v", got, want)
	}

	// Without swap accounting the swap limit is skipped, not an error.
	if err := os.Remove(filepath.Join(dir, "memory.memsw.limit_in_bytes")); err != nil {
		t.Fatal(err)
	}
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(60), Swap: i64(90)}}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ft.trace.String(), "skip memory.swap") {
		t.Errorf("skip not traced:\n%s", ft.trace.String())
	}
	if got := ft.read(dir, "memory.limit_in_bytes"); got != "60" {
		t.Errorf("limit = %q", got)
	}
}

func TestFakeSetErrors(t *testing.T) {
	tests := []struct {
		name, fixture string
		r             specs.LinuxResources
		cat           error
		msg           string
	}{
		{"cpuset beyond parent", "v1", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "2-5"}}, errdefs.ErrInvalid, "cpu.cpus \"2-5\": 4,5 not available"},
		{"mems beyond parent v2", "v2", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "1"}}, errdefs.ErrInvalid, "cpu.mems \"1\": 1 not available"},
		{"hugepage size", "v1", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "64KB"}}}, errdefs.ErrInvalid, "page size 64KB is not supported"},
		{"check before update", "v1", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1024), CheckBeforeUpdate: boolp(true)}}, errdefs.ErrInvalid, "below the cgroup's current usage 4096"},
		{"check before update v2", "v2", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1024), CheckBeforeUpdate: boolp(true)}}, errdefs.ErrInvalid, "below the cgroup's current usage 4096"},
		{"v2 swap without limit", "v2", specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: i64(1 << 30)}}, errdefs.ErrInvalid, "needs memory.limit"},
		{"v2 realtime", "v2", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1000)}}, errdefs.ErrUnsupported, "realtime"},
		{"v2 swappiness", "v2", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(0)}}, errdefs.ErrUnsupported, "swappiness"},
		{"v2 oom killer", "v2", specs.LinuxResources{Memory: &specs.LinuxMemory{DisableOOMKiller: boolp(true)}}, errdefs.ErrUnsupported, "disableOOMKiller"},
		{"v2 leaf weight", "v2", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{LeafWeight: u16(100)}}, errdefs.ErrUnsupported, "leafWeight"},
		{"v2 network", "v2", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(1)}}, errdefs.ErrUnsupported, "net_cls controller is not available"},
		{"hybrid network hint", "hybrid-host", specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(1)}}, errdefs.ErrUnsupported, "MountV1Controllers"},
		{"unified on v1", "v1", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, errdefs.ErrUnsupported, "legacy"},
		{"unified v1 controller on hybrid", "hybrid-host", specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}, errdefs.ErrUnsupported, "memory controller is on cgroup v1"},
		{"unified unknown file", "v2", specs.LinuxResources{Unified: map[string]string{"memory.nonsense": "1"}}, errdefs.ErrInvalid, "no such file"},
		{"rdma absent", "v1", specs.LinuxResources{Rdma: map[string]specs.LinuxRdma{"mlx": {HcaHandles: u32(1)}}}, errdefs.ErrUnsupported, "rdma controller"},
		{"invalid before writing", "v1", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}, CPU: &specs.LinuxCPU{Shares: u64(1)}}, errdefs.ErrInvalid, "cpu.shares 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ft := newFakeTree(t, tc.fixture, "cpu cpuset io memory pids hugetlb")
			m := ft.created("/cfs/c1")
			ft.trace.Reset()
			err := m.Set(&tc.r)
			if !errors.Is(err, tc.cat) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v; want %v containing %q", err, tc.cat, tc.msg)
			}
			if tc.name == "invalid before writing" && strings.Contains(ft.trace.String(), "write") {
				t.Errorf("wrote before validating:\n%s", ft.trace.String())
			}
		})
	}
}

func TestResourceErr(t *testing.T) {
	tests := []struct {
		resource string
		errno    unix.Errno
		cat      error
		why      string
	}{
		{"memory.limit", unix.EBUSY, errdefs.ErrInvalid, "already uses more memory"},
		{"cpu.rt", unix.EBUSY, errdefs.ErrInvalid, "current state"},
		{"cpu.quota", unix.EINVAL, errdefs.ErrInvalid, "rejected"},
		{"cpu.cpus", unix.ENOSPC, errdefs.ErrInvalid, "CPUs"},
		{"cpu.burst", unix.ENOENT, errdefs.ErrUnsupported, "does not provide"},
		{"memory.kernel", unix.EOPNOTSUPP, errdefs.ErrUnsupported, "does not support"},
	}
	for _, tc := range tests {
		err := resourceErr(tc.resource, "1", fmt.Errorf("writing: %w", tc.errno))
		if !errors.Is(err, tc.cat) || !errors.Is(err, tc.errno) || !strings.Contains(err.Error(), tc.why) || !strings.HasPrefix(err.Error(), tc.resource) {
			t.Errorf("resourceErr(%s, %v) = %v", tc.resource, tc.errno, err)
		}
	}
	if err := resourceErr("x", "1", unix.EPERM); !errors.Is(err, unix.EPERM) || errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("EPERM: %v", err)
	}
}

func TestFakeStats(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		ft := newFakeTree(t, "v1", "")
		m := ft.created("/cfs/c1")
		p := m.Paths()
		ft.write(p["cpuacct"], "cpuacct.usage", "5000")
		ft.write(p["cpuacct"], "cpuacct.usage_user", "3000")
		ft.write(p["cpuacct"], "cpuacct.usage_sys", "2000")
		ft.write(p["cpu"], "cpu.stat", "nr_periods 10\nnr_throttled 3\nthrottled_time 777\n")
		ft.write(p["memory"], "memory.usage_in_bytes", "1000")
		ft.write(p["memory"], "memory.max_usage_in_bytes", "2000")
		ft.write(p["memory"], "memory.limit_in_bytes", "4096")
		ft.write(p["memory"], "memory.memsw.usage_in_bytes", "1500")
		ft.write(p["memory"], "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
		ft.write(p["pids"], "pids.current", "3")
		ft.write(p["pids"], "pids.max", "5")
		ft.write(p["blkio"], "blkio.throttle.io_service_bytes_recursive", "8:0 Read 100\n8:0 Write 200\n8:0 Sync 0\n8:16 Read 1\nTotal 301\n")
		ft.write(p["blkio"], "blkio.throttle.io_serviced_recursive", "8:0 Read 4\n8:0 Write 5\nTotal 9\n")
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		want := Stats{
			CPU:    CPUStats{UsageNS: 5000, UserNS: 3000, SystemNS: 2000, Periods: 10, ThrottledPeriods: 3, ThrottledNS: 777},
			Memory: MemoryStats{Usage: 1000, MaxUsage: 2000, Limit: 4096, SwapUsage: 500, OOMKills: 2},
			Pids:   PidsStats{Current: 3, Limit: 5},
			BlkIO:  BlkIOStats{ReadBytes: 101, WriteBytes: 200, ReadOps: 4, WriteOps: 5},
		}
		if *s != want {
			t.Errorf("Stats = %+v\nwant %+v", *s, want)
		}
		if ok, err := m.OOMKilled(); !ok || err != nil {
			t.Errorf("OOMKilled = %v, %v", ok, err)
		}
	})
	t.Run("v2", func(t *testing.T) {
		ft := newFakeTree(t, "v2", "cpu io memory pids")
		m := ft.created("/cfs/c1")
		d := m.v2.dir
		ft.write(d, "cpu.stat", "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods 10\nnr_throttled 3\nthrottled_usec 7\n")
		ft.write(d, "memory.current", "1000")
		ft.write(d, "memory.peak", "2000")
		ft.write(d, "memory.swap.current", "500")
		ft.write(d, "memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\noom_group_kill 0\n")
		ft.write(d, "pids.current", "3")
		ft.write(d, "io.stat", "8:0 rbytes=100 wbytes=200 rios=4 wios=5 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=0 rios=0 wios=0 dbytes=0 dios=0\n")
		s, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		want := Stats{
			CPU:    CPUStats{UsageNS: 5000, UserNS: 3000, SystemNS: 2000, Periods: 10, ThrottledPeriods: 3, ThrottledNS: 7000},
			Memory: MemoryStats{Usage: 1000, MaxUsage: 2000, Limit: 0, SwapUsage: 500, OOMKills: 1},
			Pids:   PidsStats{Current: 3, Limit: 0},
			BlkIO:  BlkIOStats{ReadBytes: 101, WriteBytes: 200, ReadOps: 4, WriteOps: 5},
		}
		if *s != want {
			t.Errorf("Stats = %+v\nwant %+v", *s, want)
		}
		if ok, err := m.OOMKilled(); !ok || err != nil {
			t.Errorf("OOMKilled = %v, %v", ok, err)
		}
	})
}

func TestFakeFreeze(t *testing.T) {
	t.Run("v1", func(t *testing.T) {
		ft := newFakeTree(t, "v1", "")
		m := ft.created("/cfs/c1")
		if err := m.Freeze(); err != nil {
			t.Fatal(err)
		}
		if got := ft.read(m.v1["freezer"].dir, "freezer.state"); got != "FROZEN" {
			t.Errorf("freezer.state = %q", got)
		}
		if err := m.Thaw(); err != nil {
			t.Fatal(err)
		}
		if got := ft.read(m.v1["freezer"].dir, "freezer.state"); got != "THAWED" {
			t.Errorf("freezer.state = %q", got)
		}
	})
	t.Run("v2", func(t *testing.T) {
		ft := newFakeTree(t, "v2", "")
		m := ft.created("/cfs/c1")
		ft.write(m.v2.dir, "cgroup.events", "populated 1\nfrozen 1\n") // the kernel's answer
		if err := m.Freeze(); err != nil {
			t.Fatal(err)
		}
		if got := ft.read(m.v2.dir, "cgroup.freeze"); got != "1" {
			t.Errorf("cgroup.freeze = %q", got)
		}
		ft.write(m.v2.dir, "cgroup.events", "populated 1\nfrozen 0\n")
		if err := m.Thaw(); err != nil {
			t.Fatal(err)
		}
		if got := ft.read(m.v2.dir, "cgroup.freeze"); got != "0" {
			t.Errorf("cgroup.freeze = %q", got)
		}
	})
}

func TestNewRejectsBadPaths(t *testing.T) {
	h := parseFixture(t, "v2")
	for _, p := range []string{"", "/", "/cfs/../../etc"} {
		if _, err := New(h, p, nil); !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("New(%q) = %v, want ErrInvalid", p, err)
		}
	}
	if _, err := New(nil, "/cfs/x", nil); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("New(nil host) = %v", err)
	}
}
