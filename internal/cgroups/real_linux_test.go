package cgroups

// Tests against the running kernel, as root. What they exercise is decided
// by DetectHost, never by hard-coded paths, so the same binary covers v1,
// hybrid and v2 machines. Each test works below its own /cfs-test-<random>
// parent and removes it, also on failure.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

const helperEnv = "CFS_CGROUPS_TEST_HELPER"

// TestMain lets the test binary double as a helper process: it is started
// with helperEnv set, waits on stdin until the test has put it in a cgroup,
// then does its job.
func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "memhog":
		// Allocate and touch 100 MiB; a 20 MiB limit must OOM-kill us.
		waitStdin()
		b := make([]byte, 100<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("survived", len(b))
		os.Exit(0)
	case "hold":
		// Allocate and touch 30 MiB, say so, and keep it.
		waitStdin()
		b := make([]byte, 30<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("ready")
		waitStdin()
		runtime.KeepAlive(b)
		os.Exit(0)
	case "ticker":
		// Burn a little CPU and print a tick every 5ms.
		waitStdin()
		for {
			start := time.Now()
			for time.Since(start) < time.Millisecond {
			}
			os.Stdout.Write([]byte("t\n"))
			time.Sleep(5 * time.Millisecond)
		}
	}
	os.Exit(2)
}

func waitStdin() {
	var b [1]byte
	os.Stdin.Read(b[:])
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func realHost(t *testing.T) *Host {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root")
	}
	h, err := DetectHost()
	if err != nil {
		t.Skipf("no cgroups on this host: %v", err)
	}
	return h
}

// realManager creates a cgroup below a fresh test parent and registers its
// removal and a leak check.
func realManager(t *testing.T, h *Host) (Manager, string) {
	t.Helper()
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	parent := "/cfs-test-" + hex.EncodeToString(rnd[:])
	m, err := New(h, parent+"/c1", trace.New(logWriter{t}, "cgroup-test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		if err := RemoveParent(h, parent+"/c1", nil); err != nil {
			t.Errorf("RemoveParent: %v", err)
		}
		for _, hi := range h.Hierarchies {
			dir := filepath.Join(hi.Mount, parent)
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("left behind: %s", dir)
				forceRemove(dir)
			}
		}
	})
	if err := m.Create(); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return m, parent
}

// forceRemove removes a test cgroup tree that Destroy failed to remove.
func forceRemove(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			forceRemove(filepath.Join(dir, e.Name()))
		}
	}
	for i := 0; i < 50 && unix.Rmdir(dir) == unix.EBUSY; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

type helper struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *os.File // the stdout pipe, for read deadlines
	stdout *bufio.Reader
	stderr strings.Builder
}

// startHelper starts a process the test owns, in its own process group,
// and kills that group at clean-up (before the cgroup is destroyed).
func startHelper(t *testing.T, env string, name string, args ...string) *helper {
	t.Helper()
	h := &helper{cmd: exec.Command(name, args...)}
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if env != "" {
		h.cmd.Env = append(os.Environ(), helperEnv+"="+env)
	}
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	h.out = out.(*os.File)
	h.stdout = bufio.NewReader(out)
	h.cmd.Stderr = &h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := h.cmd.Process.Pid
	t.Cleanup(func() {
		_ = unix.Kill(-pid, unix.SIGKILL)
		_ = h.cmd.Wait()
	})
	return h
}

func startTestHelper(t *testing.T, mode string) *helper {
	return startHelper(t, mode, os.Args[0], "-test.run=^$")
}

func (h *helper) go_(t *testing.T) {
	t.Helper()
	if _, err := h.stdin.Write([]byte("\n")); err != nil {
		t.Fatalf("starting helper: %v", err)
	}
}

// kernelValue reads a controller file through the manager's paths, picking
// the v1 or v2 file name by where the host has the controller.
func kernelValue(t *testing.T, h *Host, m Manager, ctrl, v1file, v2file string) string {
	t.Helper()
	c, ok := h.Controller(ctrl)
	if !ok {
		t.Fatalf("no %s controller", ctrl)
	}
	file := v1file
	if c.Version == V2 {
		file = v2file
	}
	b, err := os.ReadFile(filepath.Join(m.Paths()[ctrl], file))
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	return strings.TrimSpace(string(b))
}

func requireControllers(t *testing.T, h *Host, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, ok := h.Controller(n); !ok {
			t.Skipf("needs the %s controller: host is %s", n, h.Mode)
		}
	}
}

func TestRealDetectHost(t *testing.T) {
	h := realHost(t)
	h2, err := DetectHost()
	if err != nil || h2 != h {
		t.Errorf("DetectHost is not cached: %p %p %v", h, h2, err)
	}
	t.Logf("host: %s, unified at %q, unmounted %v", h.Mode, h.Unified, h.Unmounted)
	for _, hi := range h.Hierarchies {
		t.Logf("  v%d %s %v", hi.Version, hi.Mount, hi.Controllers)
		if st, err := os.Stat(hi.Mount); err != nil || !st.IsDir() {
			t.Errorf("hierarchy %s: %v", hi.Mount, err)
		}
	}
	// The kernel's own view of our process agrees on the v1 hierarchies.
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range h.Controllers {
		if c.Version == V1 && !strings.Contains(string(self), name) {
			t.Errorf("v1 controller %s not in /proc/self/cgroup:\n%s", name, self)
		}
	}
}

func TestRealLifecycle(t *testing.T) {
	h := realHost(t)
	requireControllers(t, h, "memory", "pids", "cpu")
	m, parent := realManager(t, h)

	swap := int64(64 << 20)
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: &swap},
		Pids:   &specs.LinuxPids{Limit: i64(10)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000)},
	}
	if err := m.Set(r); err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got := kernelValue(t, h, m, "memory", "memory.limit_in_bytes", "memory.max"); got != "67108864" {
		t.Errorf("memory limit = %s", got)
	}
	if got := kernelValue(t, h, m, "pids", "pids.max", "pids.max"); got != "10" {
		t.Errorf("pids.max = %s", got)
	}
	if got := kernelValue(t, h, m, "cpu", "cpu.shares", "cpu.weight"); got != "512" && got != "59" {
		t.Errorf("cpu shares/weight = %s, want 512 (v1) or 59 (v2)", got)
	}
	if got := kernelValue(t, h, m, "cpu", "cpu.cfs_quota_us", "cpu.max"); got != "50000" && got != "50000 100000" {
		t.Errorf("cpu quota = %s", got)
	}

	p := startTestHelper(t, "ticker")
	pid := p.cmd.Process.Pid
	start := time.Now()
	if err := m.Add(pid); err != nil {
		t.Fatalf("Add: %v", err)
	}
	t.Logf("Add into %d hierarchies took %v", len(h.Hierarchies), time.Since(start))
	p.go_(t)

	self, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		// "id:controllers:path"; skip hierarchies the host view lacks
		// (one mounted after DetectHost, or not mounted at all).
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			t.Fatalf("bad /proc/pid/cgroup line %q", line)
		}
		first, _, _ := strings.Cut(f[1], ",")
		if _, ok := h.Controller(first); !ok && !(f[1] == "" && h.Unified != "") {
			continue
		}
		if !strings.HasSuffix(line, parent+"/c1") {
			t.Errorf("process not in our cgroup in every hierarchy: %q", line)
		}
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 1 || pids[0] != pid {
		t.Errorf("Pids() = %v, %v; want [%d]", pids, err, pid)
	}

	// Let it run, then check the counters.
	readTicks(p, 100*time.Millisecond)
	s, err := m.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	t.Logf("stats: %+v", *s)
	if s.CPU.UsageNS == 0 {
		t.Errorf("no CPU usage accounted")
	}
	if s.Memory.Usage == 0 || s.Memory.Limit != 64<<20 {
		t.Errorf("memory usage %d limit %d", s.Memory.Usage, s.Memory.Limit)
	}
	// pids counts tasks: the Go helper has several threads.
	if s.Pids.Current < 1 || s.Pids.Current > 10 || s.Pids.Limit != 10 {
		t.Errorf("pids current %d limit %d", s.Pids.Current, s.Pids.Limit)
	}
	if oom, err := m.OOMKilled(); oom || err != nil {
		t.Errorf("OOMKilled = %v, %v", oom, err)
	}

	// Freeze: the kernel reports frozen and the ticks stop; thaw: they
	// resume.
	if err := m.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if st := freezerState(t, h, m); st != "frozen" {
		t.Errorf("after Freeze the kernel says %s", st)
	}
	readTicks(p, 30*time.Millisecond) // what was in flight
	if n := readTicks(p, 200*time.Millisecond); n != 0 {
		t.Errorf("%d ticks while frozen", n)
	}
	if err := m.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if st := freezerState(t, h, m); st != "thawed" {
		t.Errorf("after Thaw the kernel says %s", st)
	}
	if n := readTicks(p, 200*time.Millisecond); n == 0 {
		t.Errorf("no ticks after thaw")
	}

	// Kill our process, then Destroy must leave nothing (checked by
	// realManager's clean-up, and here for the container cgroup).
	if err := p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
	start = time.Now()
	if err := m.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	t.Logf("Destroy took %v", time.Since(start))
	for ctrl, dir := range m.Paths() {
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			t.Errorf("%s cgroup %s still exists", ctrl, dir)
		}
	}
}

// readTicks counts the ticker's lines for d.
func readTicks(p *helper, d time.Duration) int {
	p.out.SetReadDeadline(time.Now().Add(d))
	defer p.out.SetReadDeadline(time.Time{})
	n := 0
	for {
		if _, err := p.stdout.ReadString('\n'); err != nil {
			return n
		}
		n++
	}
}

func freezerState(t *testing.T, h *Host, m Manager) string {
	t.Helper()
	if c, ok := h.Controller("freezer"); ok && c.Version == V1 {
		b, err := os.ReadFile(filepath.Join(m.Paths()["freezer"], "freezer.state"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.ToLower(strings.TrimSpace(string(b)))
	}
	ev, err := readKeyedAll(m.Paths()["unified"], "cgroup.events")
	if err != nil {
		t.Fatal(err)
	}
	if ev["frozen"] == 1 {
		return "frozen"
	}
	return "thawed"
}

func TestRealPidsLimit(t *testing.T) {
	h := realHost(t)
	requireControllers(t, h, "pids")
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Skipf("needs busybox: %v", err)
	}
	m, _ := realManager(t, h)
	if err := m.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(5)}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	// busybox ash gives up at the first failed fork; the sleeps do not
	// hold our stdout pipe, so we see EOF then.
	p := startHelper(t, "", busybox, "sh", "-c",
		`read x; for i in $(seq 20); do sleep 5 </dev/null >/dev/null 2>&1 & done; echo started; wait`)
	if err := m.Add(p.cmd.Process.Pid); err != nil {
		t.Fatalf("Add: %v", err)
	}
	p.go_(t)
	out, _ := io.ReadAll(p.stdout)
	if strings.Contains(string(out), "started") {
		t.Errorf("the shell started 20 sleeps under a limit of 5")
	}
	pids, err := m.Pids()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > 5 {
		t.Errorf("%d processes in the cgroup, limit 5", len(pids))
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Pids.Current > 5 || s.Pids.Limit != 5 {
		t.Errorf("pids stats %+v", s.Pids)
	}
	// The stderr pipe is copied concurrently; give it a moment.
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(p.stderr.String(), "fork") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%d processes; shell stderr: %s", len(pids), firstLine(p.stderr.String()))
	if !strings.Contains(p.stderr.String(), "fork") {
		t.Errorf("the shell forked 20 times under a limit of 5; stderr: %q", p.stderr.String())
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func TestRealMemoryOOM(t *testing.T) {
	h := realHost(t)
	requireControllers(t, h, "memory")
	m, _ := realManager(t, h)
	// swap = limit: no room to swap out instead of dying.
	if err := m.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(20 << 20), Swap: i64(20 << 20)}}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	p := startTestHelper(t, "memhog")
	if err := m.Add(p.cmd.Process.Pid); err != nil {
		t.Fatalf("Add: %v", err)
	}
	p.go_(t)
	out, _ := io.ReadAll(p.stdout)
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("memory hog exited with %v, output %q", err, out)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("memory hog ended with %v, want SIGKILL", err)
	}
	oom, err := m.OOMKilled()
	if err != nil || !oom {
		t.Errorf("OOMKilled = %v, %v; want true", oom, err)
	}
	if s, err := m.Stats(); err != nil || s.Memory.OOMKills == 0 {
		t.Errorf("stats OOM kills: %+v, %v", s, err)
	}
}

// A limit below what the cgroup uses is refused with ErrInvalid: by the
// v1 kernel (EBUSY after failed reclaim) or, on v2, where the kernel would
// OOM-kill instead, by checkBeforeUpdate.
func TestRealMemoryBelowUsage(t *testing.T) {
	h := realHost(t)
	requireControllers(t, h, "memory")
	m, _ := realManager(t, h)
	p := startTestHelper(t, "hold")
	if err := m.Add(p.cmd.Process.Pid); err != nil {
		t.Fatalf("Add: %v", err)
	}
	// Pages are charged to the cgroup that faults them in: start the
	// allocation only once the process is inside.
	p.go_(t)
	if line, err := p.stdout.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("helper: %q %v", line, err)
	}
	s, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("usage after allocating 30 MiB: %d", s.Memory.Usage)
	if s.Memory.Usage < 10<<20 {
		t.Skipf("pages were not charged to the new cgroup (usage %d): cannot test", s.Memory.Usage)
	}
	mem := &specs.LinuxMemory{Limit: i64(4 << 20)}
	if c, _ := h.Controller("memory"); c.Version == V2 {
		mem.CheckBeforeUpdate = boolp(true)
	}
	err = m.Set(&specs.LinuxResources{Memory: mem})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "memory") {
		t.Errorf("Set(limit 4 MiB) = %v; want ErrInvalid about memory", err)
	}
	t.Logf("error: %v", err)
}

func TestRealCpusetOutsideHost(t *testing.T) {
	h := realHost(t)
	requireControllers(t, h, "cpuset")
	m, _ := realManager(t, h)
	cpus := "0-" + strconv.Itoa(runtime.NumCPU()+3)
	err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: cpus}})
	if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), "cpu.cpus") {
		t.Errorf("Set(cpus %s) = %v; want ErrInvalid about cpu.cpus", cpus, err)
	}
	// And a valid one is accepted and read back.
	if err := m.Set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0"}}); err != nil {
		t.Fatalf("Set(cpus 0): %v", err)
	}
	if got := kernelValue(t, h, m, "cpuset", "cpuset.cpus", "cpuset.cpus"); got != "0" {
		t.Errorf("cpuset.cpus = %q", got)
	}
}

func TestRealMountNetControllers(t *testing.T) {
	h := realHost(t)
	if !containsAll(h.Unmounted, "net_cls", "net_prio") {
		t.Skipf("needs net_cls and net_prio enabled but unmounted: host has %v unmounted", h.Unmounted)
	}
	dir := t.TempDir()
	// A clone, so the DetectHost cache used by other tests keeps the
	// host as it is; the mount goes away at the end of this test.
	h2, err := MountV1Controllers(h.clone(), dir, []string{"net_cls", "net_prio"}, trace.New(logWriter{t}, "cgroup-test"))
	if err != nil {
		t.Fatalf("MountV1Controllers: %v", err)
	}
	target := filepath.Join(dir, "net_cls,net_prio")
	t.Cleanup(func() { unmountHierarchy(t, target, "net_cls") })
	if c, ok := h2.Controller("net_cls"); !ok || c.Version != V1 || c.Mount != target {
		t.Fatalf("net_cls after mount: %+v %v", c, ok)
	}
	m, _ := realManager(t, h2)
	err = m.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{
		ClassID:    u32(0x100001),
		Priorities: []specs.LinuxInterfacePriority{{Name: "lo", Priority: 3}},
	}})
	if err != nil {
		t.Fatalf("Set: %v", err)
	}
	if got := kernelValue(t, h2, m, "net_cls", "net_cls.classid", ""); got != "1048577" {
		t.Errorf("net_cls.classid = %s", got)
	}
	if got := kernelValue(t, h2, m, "net_prio", "net_prio.ifpriomap", ""); !strings.Contains(got, "lo 3") {
		t.Errorf("net_prio.ifpriomap = %q", got)
	}
}

func containsAll(list []string, names ...string) bool {
	for _, n := range names {
		if !contains(list, n) {
			return false
		}
	}
	return true
}

// unmountHierarchy unmounts a v1 hierarchy the test mounted so that the
// kernel destroys it. The kernel only does that if the hierarchy has no
// child cgroups at umount time, and rmdir'd cgroups leave their parent's
// list asynchronously: unmounting right after Destroy would leave the
// hierarchy alive, unmounted, with every process of the host in it.
func unmountHierarchy(t *testing.T, target, ctrl string) {
	deadline := time.Now().Add(5 * time.Second)
	for procCgroupsField(t, ctrl, 2) != "1" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := unix.Unmount(target, 0); err != nil {
		t.Errorf("unmount %s: %v", target, err)
		return
	}
	for procCgroupsField(t, ctrl, 1) != "0" {
		if time.Now().After(deadline) {
			t.Errorf("hierarchy of %s still alive after unmount: remount and unmount it by hand", ctrl)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procCgroupsField returns field i (1 hierarchy, 2 num_cgroups) of a
// controller's /proc/cgroups line.
func procCgroupsField(t *testing.T, ctrl string, i int) string {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == ctrl {
			return f[i]
		}
	}
	return ""
}
