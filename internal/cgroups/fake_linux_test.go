package cgroups

// Unit tests on a fake cgroupfs: the hosts parsed from the testdata
// fixtures, moved under t.TempDir(), with directories filled with files the
// way the kernel does on mkdir (mkdirHook).

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cfs-org/cfs/internal/trace"
)

const unlimited = "9223372036854771712"

var fakeV1Files = map[string]map[string]string{
	"cpuset": {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.effective_cpus": "0-3", "cpuset.effective_mems": "0"},
	"memory": {
		"memory.limit_in_bytes": unlimited, "memory.memsw.limit_in_bytes": unlimited,
		"memory.soft_limit_in_bytes": unlimited, "memory.usage_in_bytes": "4096",
		"memory.max_usage_in_bytes": "8192", "memory.memsw.usage_in_bytes": "4096",
		"memory.oom_control":             "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
		"memory.swappiness":              "60",
		"memory.kmem.tcp.limit_in_bytes": unlimited, "memory.use_hierarchy": "1",
	},
	"cpu": {
		"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1",
		"cpu.cfs_burst_us": "0", "cpu.rt_period_us": "1000000", "cpu.rt_runtime_us": "0",
		"cpu.idle": "0", "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
	},
	"cpuacct": {"cpuacct.usage": "0", "cpuacct.usage_user": "0", "cpuacct.usage_sys": "0"},
	"pids":    {"pids.max": "max", "pids.current": "0"},
	"blkio": {
		"blkio.bfq.weight": "100", "blkio.bfq.weight_device": "",
		"blkio.throttle.read_bps_device": "", "blkio.throttle.write_bps_device": "",
		"blkio.throttle.read_iops_device": "", "blkio.throttle.write_iops_device": "",
		"blkio.throttle.io_service_bytes_recursive": "Total 0\n",
		"blkio.throttle.io_serviced_recursive":      "Total 0\n",
	},
	"devices":  {"devices.allow": "", "devices.deny": "", "devices.list": "a *:* rwm"},
	"freezer":  {"freezer.state": "THAWED"},
	"hugetlb":  {"hugetlb.2MB.limit_in_bytes": unlimited, "hugetlb.2MB.rsvd.limit_in_bytes": unlimited, "hugetlb.1GB.limit_in_bytes": unlimited},
	"net_cls":  {"net_cls.classid": "0"},
	"net_prio": {"net_prio.ifpriomap": ""},
}

var fakeV2Files = map[string]map[string]string{
	"memory": {
		"memory.max": "max", "memory.swap.max": "max", "memory.low": "0", "memory.high": "max",
		"memory.current": "4096", "memory.peak": "8192", "memory.swap.current": "0",
		"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n",
	},
	"cpu":     {"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0", "cpu.idle": "0"},
	"cpuset":  {"cpuset.cpus": "", "cpuset.mems": "", "cpuset.cpus.effective": "0-3", "cpuset.mems.effective": "0"},
	"pids":    {"pids.max": "max", "pids.current": "0"},
	"io":      {"io.weight": "default 100", "io.max": "", "io.stat": ""},
	"hugetlb": {"hugetlb.2MB.max": "max", "hugetlb.2MB.rsvd.max": "max", "hugetlb.1GB.max": "max"},
	"rdma":    {"rdma.max": ""},
}

type fakeTree struct {
	t     *testing.T
	root  string
	host  *Host
	trace bytes.Buffer
	tr    *trace.Tracer
}

// newFakeTree builds the hierarchies of a fixture host under a temp dir.
// rootSubtree is what the cgroup2 root has in cgroup.subtree_control.
func newFakeTree(t *testing.T, fixture, rootSubtree string) *fakeTree {
	t.Helper()
	ft := &fakeTree{t: t, root: t.TempDir()}
	ft.host = parseFixture(t, fixture).withRoot(ft.root)
	ft.tr = trace.New(&ft.trace, "test")
	for _, h := range ft.host.Hierarchies {
		if err := os.MkdirAll(h.Mount, 0o755); err != nil {
			t.Fatal(err)
		}
		ft.populate(h.Mount)
		if h.Version == V1 && contains(h.Controllers, "cpuset") {
			ft.write(h.Mount, "cpuset.cpus", "0-3")
			ft.write(h.Mount, "cpuset.mems", "0")
		}
		if h.Version == V2 {
			ft.write(h.Mount, "cgroup.controllers", strings.Join(h.Controllers, " "))
			ft.write(h.Mount, "cgroup.subtree_control", rootSubtree)
		}
	}
	return ft
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hierarchyOf returns the hierarchy holding dir.
func (ft *fakeTree) hierarchyOf(dir string) Hierarchy {
	var best Hierarchy
	for _, h := range ft.host.Hierarchies {
		if (dir == h.Mount || strings.HasPrefix(dir, h.Mount+"/")) && len(h.Mount) > len(best.Mount) {
			best = h
		}
	}
	if best.Mount == "" {
		ft.t.Fatalf("no hierarchy holds %s", dir)
	}
	return best
}

// populate plays the kernel: a new cgroup directory gets its files.
func (ft *fakeTree) populate(dir string) {
	h := ft.hierarchyOf(dir)
	isRoot := dir == h.Mount
	parent := filepath.Dir(dir)
	if h.Version == V1 {
		ft.write(dir, "cgroup.procs", "")
		ft.write(dir, "tasks", "")
		ft.write(dir, "cgroup.clone_children", "0")
		for _, c := range h.Controllers {
			for f, v := range fakeV1Files[c] {
				ft.write(dir, f, v)
			}
		}
		// cpuset_css_online copies cpus and mems when the parent has
		// clone_children set.
		if contains(h.Controllers, "cpuset") && !isRoot && ft.read(parent, "cgroup.clone_children") == "1" {
			ft.write(dir, "cpuset.cpus", ft.read(parent, "cpuset.cpus"))
			ft.write(dir, "cpuset.mems", ft.read(parent, "cpuset.mems"))
		}
		return
	}
	ft.write(dir, "cgroup.procs", "")
	ft.write(dir, "cgroup.subtree_control", "")
	ft.write(dir, "cgroup.events", "populated 0\nfrozen 0\n")
	ft.write(dir, "cgroup.freeze", "0")
	ft.write(dir, "cgroup.max.depth", "max")
	ft.write(dir, "cpu.stat", "usage_usec 0\nuser_usec 0\nsystem_usec 0\n")
	if !isRoot {
		// The kernel lists in cgroup.controllers what the parent enabled.
		on := strings.ReplaceAll(ft.read(parent, "cgroup.subtree_control"), "+", "")
		ft.write(dir, "cgroup.controllers", on)
		for _, c := range h.Controllers {
			for f, v := range fakeV2Files[c] {
				ft.write(dir, f, v)
			}
		}
	}
}

func (ft *fakeTree) write(dir, file, val string) {
	ft.t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(val), 0o644); err != nil {
		ft.t.Fatal(err)
	}
}

func (ft *fakeTree) read(dir, file string) string {
	ft.t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		ft.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// manager returns a manager for path with the fake kernel hooked in.
func (ft *fakeTree) manager(path string) *manager {
	ft.t.Helper()
	mg, err := New(ft.host, path, ft.tr)
	if err != nil {
		ft.t.Fatal(err)
	}
	m := mg.(*manager)
	m.mkdirHook = ft.populate
	return m
}

// created returns a manager whose cgroup exists.
func (ft *fakeTree) created(path string) *manager {
	ft.t.Helper()
	m := ft.manager(path)
	if err := m.Create(); err != nil {
		ft.t.Fatalf("Create: %v", err)
	}
	return m
}

// emptyDirs removes the files below the hierarchy roots, as the kernel
// would let rmdir remove a cgroup with its interface files.
func (ft *fakeTree) emptyDirs() {
	mounts := map[string]bool{}
	for _, h := range ft.host.Hierarchies {
		mounts[h.Mount] = true
	}
	filepath.Walk(ft.root, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !mounts[filepath.Dir(p)] {
			os.Remove(p)
		}
		return nil
	})
}
