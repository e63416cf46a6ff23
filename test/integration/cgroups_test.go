package integration

// Resource limits, enforced for real: what the kernel does to a container
// at its limit, measured from the outside (cgroup counters, wall time), not
// the contents of the files cfs wrote.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// cgUnified reports whether the host runs a pure cgroup v2 hierarchy.
func cgUnified() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// cgInspect is the part of `cfs inspect` these tests read.
type cgInspect struct {
	ID    string `json:"Id"`
	State struct {
		Status    string
		Running   bool
		Paused    bool
		OOMKilled bool
		ExitCode  int
		Pid       int
	}
	HostConfig struct {
		CgroupParent string // the container's cgroup path
		Memory       int64
		PidsLimit    *int64
	}
}

func (e *env) inspectCg(ref string) cgInspect {
	e.t.Helper()
	var out []cgInspect
	if err := json.Unmarshal([]byte(e.ok("inspect", ref)), &out); err != nil || len(out) != 1 {
		e.t.Fatalf("inspect %s: %v", ref, err)
	}
	return out[0]
}

// cgDir is the container's cgroup directory for a controller.
func (e *env) cgDir(ref, ctrl string) string {
	e.t.Helper()
	p := e.inspectCg(ref).HostConfig.CgroupParent
	if cgUnified() {
		return filepath.Join("/sys/fs/cgroup", p)
	}
	return filepath.Join("/sys/fs/cgroup", ctrl, p)
}

func readCgUint(t *testing.T, file, key string) uint64 {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(b))
	if key != "" {
		for _, l := range strings.Split(s, "\n") {
			if k, v, ok := strings.Cut(l, " "); ok && k == key {
				s = v
				break
			}
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return n
}

// bgContainer is a `cfs run` in the background, as long-lived containers
// are run until detached mode exists.
type bgContainer struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed once cmd.Wait returned
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBg starts `cfs run --name name args...` and waits until the
// container runs. The cfs process is killed by PID at the end of the test
// if still there (the env's clean-up then removes the container).
func (e *env) startBg(name string, args ...string) *bgContainer {
	e.t.Helper()
	cmd := e.command(append([]string{"run", "--name", name}, args...)...)
	c := &bgContainer{cmd: cmd, out: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = c.out, c.out
	// The container's init holds the output pipe: without a delay, Wait
	// would wait for it too.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := c.done
	go func() { cmd.Wait(); close(done) }()
	e.t.Cleanup(func() {
		select {
		case <-done:
		default:
			syscall.Kill(cmd.Process.Pid, syscall.SIGKILL)
			e.cfs("rm", "-f", name)
			<-done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := e.cfs("inspect", name)
		if r.code == 0 && strings.Contains(r.stdout, `"Running": true`) {
			return c
		}
		select {
		case <-done:
			e.t.Fatalf("container %s exited early: %s", name, c.out.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("container %s did not start: %s", name, c.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wait waits for the container's cfs run to exit and returns its code.
func (c *bgContainer) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		t.Fatalf("container did not exit: %s", c.out.String())
		return 0
	}
}

func TestCgroupBadValues(t *testing.T) {
	e := newEnv(t)
	unified := cgUnified()
	cases := []struct {
		name string
		args []string
		flag string
	}{
		{"malformed size", []string{"--memory", "12x"}, "--memory"},
		{"negative size", []string{"-m", "-5m"}, "--memory"},
		{"memory below the minimum", []string{"--memory", "100k"}, "--memory"},
		{"swap below memory", []string{"--memory", "16m", "--memory-swap", "8m"}, "--memory-swap"},
		{"swap without memory", []string{"--memory-swap", "32m"}, "--memory-swap"},
		{"reservation above memory", []string{"--memory", "16m", "--memory-reservation", "32m"}, "--memory-reservation"},
		{"cpus above the host", []string{"--cpus", "4096"}, "--cpus"},
		{"cpus too small", []string{"--cpus", "0.001"}, "--cpus"},
		{"cpus malformed", []string{"--cpus", "half"}, "--cpus"},
		{"cpus and quota", []string{"--cpus", "0.5", "--cpu-quota", "50000"}, "--cpus"},
		{"cpu shares", []string{"--cpu-shares", "1"}, "--cpu-shares"},
		{"cpu period", []string{"--cpu-period", "10"}, "--cpu-period"},
		{"cpu quota", []string{"--cpu-quota", "10"}, "--cpu-quota"},
		{"cpuset outside the host", []string{"--cpuset-cpus", "4096"}, "--cpuset-cpus"},
		{"cpuset malformed", []string{"--cpuset-cpus", "1-x"}, "--cpuset-cpus"},
		{"memory node outside the host", []string{"--cpuset-mems", "63"}, "--cpuset-mems"},
		{"pids limit", []string{"--pids-limit", "-5"}, "--pids-limit"},
		{"blkio weight", []string{"--blkio-weight", "5"}, "--blkio-weight"},
		{"missing device", []string{"--device-write-bps", "/dev/nonexistent:1mb"}, "--device-write-bps"},
		{"not a block device", []string{"--device-read-bps", "/dev/null:1mb"}, "--device-read-bps"},
		{"bad iops", []string{"--device-read-iops", "/dev/null:many"}, "--device-read-iops"},
		{"bad class id", []string{"--net-cls-classid", "xyz"}, "--net-cls-classid"},
		{"bad net prio", []string{"--net-prio", "lo"}, "--net-prio"},
		{"cgroup parent escapes", []string{"--cgroup-parent", "../x"}, "--cgroup-parent"},
	}
	if unified {
		cases = append(cases, struct {
			name string
			args []string
			flag string
		}{"oom-kill-disable on v2", []string{"--oom-kill-disable"}, "--oom-kill-disable"})
	} else {
		for _, f := range [][2]string{{"--memory-high", "64m"}, {"--cpu-weight", "100"}, {"--io-weight", "100"}} {
			cases = append(cases, struct {
				name string
				args []string
				flag string
			}{f[0] + " needs v2", f[:], f[0]})
		}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.cfs(append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")...)
			if r.code != 125 || !strings.Contains(r.stderr, tc.flag) {
				t.Fatalf("want exit 125 naming %s, got %s", tc.flag, r)
			}
			if strings.HasSuffix(tc.name, "needs v2") && !strings.Contains(r.stderr, "host is") {
				t.Errorf("the error does not name the host's layout: %q", r.stderr)
			}
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines > 1 {
				t.Errorf("error is not one clear line: %q", r.stderr)
			}
		})
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("failed runs left records: %q", out)
	}
	ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
	for _, d := range ents {
		if len(d.Name()) == 64 {
			t.Errorf("failed run left container directory %s", d.Name())
		}
	}
	// cfs update validates the same way and changes nothing on error. As
	// Docker's CLI, commands other than run exit 125 for a malformed flag
	// and 1 when the engine refuses.
	r := e.cfs("update", "--memory", "1m", "no-such-container")
	if r.code != 1 || !strings.Contains(r.stderr, "no such container") {
		t.Errorf("update of a missing container: %s", r)
	}
	e.startBg("upd-bad", "--memory", "32m", "busybox", "sleep", "30")
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"--memory", "zz"}, 125}, {[]string{"--memory-swap", "16m"}, 1}, {[]string{"--cpus", "4096"}, 1}, {[]string{"--pids-limit", "-3"}, 1}} {
		r := e.cfs(append(append([]string{"update"}, tc.args...), "upd-bad")...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.args[0]) {
			t.Errorf("update %v: want exit %d naming %s, got %s", tc.args, tc.code, tc.args[0], r)
		}
	}
	if r := e.cfs("update", "upd-bad"); r.code == 0 {
		t.Errorf("update without flags: %s", r)
	}
	if m := e.inspectCg("upd-bad").HostConfig.Memory; m != 32<<20 {
		t.Errorf("failed updates changed the recorded memory limit to %d", m)
	}
}

func TestCgroupMemory(t *testing.T) {
	e := newEnv(t)
	t.Run("1m is enough to run a program", func(t *testing.T) {
		e.ok("run", "--rm", "--memory", "1m", "busybox", "true")
	})
	t.Run("a memory hog is OOM-killed at its limit", func(t *testing.T) {
		r := e.cfs("run", "--name", "hog", "--memory", "16m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
		if r.code != 137 {
			t.Fatalf("want exit 137, got %s", r)
		}
		if st := e.inspectCg("hog").State; !st.OOMKilled || st.ExitCode != 137 {
			t.Errorf("inspect: %+v, want OOMKilled and exit code 137", st)
		}
		if out := e.ok("ps", "-a"); !strings.Contains(out, "Exited (137)") || !strings.Contains(out, "OOMKilled") {
			t.Errorf("ps -a does not show the OOM kill:\n%s", out)
		}
		// The same program within its limit is not killed.
		e.ok("run", "--rm", "--memory", "96m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
	})
	t.Run("the program is the victim, not the container's init", func(t *testing.T) {
		if !hasCap(24) { // CAP_SYS_RESOURCE
			t.Skip("needs CAP_SYS_RESOURCE to lower the init's OOM score, and this host's root lacks it")
		}
		// The hog starts once init's score is lowered, which happens just
		// after the program started (see runtime.Container.Start).
		r := e.cfs("run", "--rm", "--memory", "4m", "busybox", "sh", "-c", "sleep 0.5; dd if=/dev/zero of=/dev/null bs=16M count=1; echo rc=$?")
		if !strings.Contains(r.stdout, "rc=137") || r.code != 0 {
			t.Fatalf("the shell did not survive its OOM-killed child: %s", r)
		}
	})
	t.Run("update raises the limit of a running container", func(t *testing.T) {
		sig := t.TempDir()
		c := e.startBg("grow", "-v", sig+":/sig", "--memory", "16m", "busybox", "sh", "-c",
			"dd if=/dev/zero of=/dev/null bs=32M count=1 2>/dev/null; echo first=$?; "+
				"while [ ! -e /sig/go ]; do sleep 0.02; done; "+
				"dd if=/dev/zero of=/dev/null bs=32M count=1 2>/dev/null; echo second=$?")
		waitFor(t, func() bool { return strings.Contains(c.out.String(), "first=") })
		if !strings.Contains(c.out.String(), "first=137") {
			t.Fatalf("the first allocation was not killed: %q", c.out.String())
		}
		if out := e.ok("update", "--memory", "64m", "grow"); strings.TrimSpace(out) != "grow" {
			t.Errorf("update printed %q", out)
		}
		os.WriteFile(filepath.Join(sig, "go"), nil, 0o644)
		if code := c.wait(t); code != 0 || !strings.Contains(c.out.String(), "second=0") {
			t.Fatalf("after update: exit %d, output %q", code, c.out.String())
		}
		if m := e.inspectCg("grow").HostConfig.Memory; m != 64<<20 {
			t.Errorf("recorded memory limit %d, want %d", m, 64<<20)
		}
	})
}

// hasCap reports whether this process has capability n in its effective set.
func hasCap(n uint) bool {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			c, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && c&(1<<n) != 0
		}
	}
	return false
}

func TestCgroupPidsLimit(t *testing.T) {
	e := newEnv(t)
	// A fork bomb: every process leaves a sleep behind and forks two more
	// like itself, until fork fails. The main process waits on a FIFO
	// nobody writes (a shell builtin: no fork; and no child, so no SIGCHLD
	// interrupts the open).
	e.startBg("bomb", "--pids-limit", "32", "busybox", "sh", "-c",
		"mkfifo /f; b() { sleep 1000 & b | b & }; (b &) 2>/dev/null; read x < /f")
	time.Sleep(300 * time.Millisecond)
	dir := e.cgDir("bomb", "pids")
	// Under emulation (the v2 VM) the bomb takes a while to reach the limit.
	waitFor(t, func() bool { return readCgUint(t, filepath.Join(dir, "pids.events"), "max") > 0 })
	max := readCgUint(t, filepath.Join(dir, "pids.max"), "")
	for i := 0; i < 5; i++ {
		if cur := readCgUint(t, filepath.Join(dir, "pids.current"), ""); cur > max {
			t.Fatalf("pids.current %d above pids.max %d", cur, max)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := readCgUint(t, filepath.Join(dir, "pids.events"), "max"); n == 0 {
		t.Errorf("the fork bomb never hit the limit (pids.events max = 0)")
	}
	// cfs stats counts the program's tasks (not the runtime's init
	// threads): at most the limit plus the small slack kept for init.
	out := strings.TrimSpace(e.ok("stats", "--no-stream", "--format", "{{.PIDs}}", "bomb"))
	if n, err := strconv.Atoi(out); err != nil || n < 2 || n > 34 {
		t.Errorf("stats shows %q tasks, want at most 32 (+2)", out)
	}
	// The container still works at its limit: cfs can read it and pause it.
	e.ok("pause", "bomb")
	e.ok("unpause", "bomb")
	e.ok("rm", "-f", "bomb")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("cgroup %s survived rm -f: %v", dir, err)
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("rm -f left %q", out)
	}
}

func TestCgroupCPU(t *testing.T) {
	e := newEnv(t)
	e.startBg("spin", "--cpus", "0.5", "busybox", "sh", "-c", "while :; do :; done")
	usage := func() (uint64, time.Time) {
		if cgUnified() {
			return readCgUint(t, filepath.Join(e.cgDir("spin", "cpu"), "cpu.stat"), "usage_usec") * 1000, time.Now()
		}
		return readCgUint(t, filepath.Join(e.cgDir("spin", "cpuacct"), "cpuacct.usage"), ""), time.Now()
	}
	time.Sleep(300 * time.Millisecond) // past the first period's burst
	u0, t0 := usage()
	time.Sleep(3 * time.Second)
	u1, t1 := usage()
	share := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
	t.Logf("--cpus 0.5: %.1f%% of a CPU over %v", share*100, t1.Sub(t0).Round(time.Millisecond))
	if share < 0.38 || share > 0.62 {
		t.Errorf("--cpus 0.5 gave %.1f%% of a CPU, want 50%% ± 12%%", share*100)
	}
	// cfs stats shows the same: one frame of JSON, then a table.
	var row map[string]string
	if err := json.Unmarshal([]byte(e.ok("stats", "--no-stream", "--format", "json", "spin")), &row); err != nil {
		t.Fatal(err)
	}
	if pct, err := strconv.ParseFloat(strings.TrimSuffix(row["CPUPerc"], "%"), 64); err != nil || pct < 30 || pct > 70 {
		t.Errorf("stats CPUPerc %q, want about 50%%", row["CPUPerc"])
	}
	if row["Name"] != "spin" || !strings.Contains(row["MemUsage"], " / ") {
		t.Errorf("stats row: %v", row)
	}
	out := e.ok("stats", "--no-stream")
	if !strings.Contains(out, "CPU %") || !strings.Contains(out, "MEM USAGE / LIMIT") || !strings.Contains(out, "spin") {
		t.Errorf("stats table:\n%s", out)
	}
	// Halving the quota on the fly halves the share.
	e.ok("update", "--cpus", "0.25", "spin")
	time.Sleep(200 * time.Millisecond)
	u0, t0 = usage()
	time.Sleep(1500 * time.Millisecond)
	u1, t1 = usage()
	if share := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds()); share < 0.15 || share > 0.35 {
		t.Errorf("after update --cpus 0.25: %.1f%% of a CPU", share*100)
	}
}

// blockDeviceOf returns the whole-disk device node of the filesystem
// holding dir, "" if it has none (tmpfs, overlay).
func blockDeviceOf(t *testing.T, dir string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	major, minor := (st.Dev>>8)&0xfff|(st.Dev>>32)&^0xfff, st.Dev&0xff|(st.Dev>>12)&^0xff
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", major, minor)
	if _, err := os.Stat(sys); err != nil {
		return ""
	}
	if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
		sys = filepath.Join(sys, "..") // the whole disk: blk-throttle works there
	}
	real, err := filepath.EvalSymlinks(sys)
	if err != nil {
		return ""
	}
	dev := "/dev/" + filepath.Base(real)
	if _, err := os.Stat(dev); err != nil {
		return ""
	}
	return dev
}

func TestCgroupDeviceWriteBps(t *testing.T) {
	e := newEnv(t)
	dev := blockDeviceOf(t, e.root)
	if dev == "" {
		t.Skipf("CFS_ROOT %s is on no block device", e.root)
	}
	// 6 MiB of direct writes at 2 MiB/s: 3 s, timed inside the container.
	const rate, size = 2 << 20, 6 << 20
	out := e.ok("run", "--rm", "--device-write-bps", dev+":2mb", "busybox", "sh", "-c",
		"a=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/zero of=/out bs=256k count=24 oflag=direct 2>/dev/null || exit 9; "+
			"b=$(cut -d' ' -f1 /proc/uptime); echo $a $b")
	var a, b float64
	if _, err := fmt.Sscan(out, &a, &b); err != nil {
		t.Fatalf("output %q: %v", out, err)
	}
	want := float64(size) / rate
	t.Logf("--device-write-bps %s:2mb: %d bytes in %.2fs (%.2f MiB/s)", dev, size, b-a, float64(size)/(b-a)/(1<<20))
	if got := b - a; got < want*0.75 || got > want*1.25 {
		t.Errorf("6 MiB took %.2fs, want %.1fs ± 25%%", got, want)
	}
}

func TestCgroupPause(t *testing.T) {
	e := newEnv(t)
	sig := t.TempDir()
	counter := filepath.Join(sig, "n")
	e.startBg("counter", "-v", sig+":/sig", "busybox", "sh", "-c",
		"i=0; while :; do i=$((i+1)); echo $i > /sig/n.tmp; mv /sig/n.tmp /sig/n; sleep 0.02; done")
	read := func() int {
		b, _ := os.ReadFile(counter)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
	waitFor(t, func() bool { return read() > 0 })
	e.ok("pause", "counter")
	before := read()
	time.Sleep(400 * time.Millisecond)
	if after := read(); after != before {
		t.Fatalf("the counter moved while paused: %d -> %d", before, after)
	}
	if st := e.inspectCg("counter").State; !st.Paused || st.Status != "paused" || !st.Running {
		t.Errorf("inspect while paused: %+v", st)
	}
	if out := e.ok("ps"); !strings.Contains(out, "(Paused)") {
		t.Errorf("ps does not show the pause:\n%s", out)
	}
	if r := e.cfs("pause", "counter"); r.code != 1 || !strings.Contains(r.stderr, "already paused") {
		t.Errorf("second pause: %s", r)
	}
	e.ok("unpause", "counter")
	waitFor(t, func() bool { return read() > before+3 })
	if st := e.inspectCg("counter").State; st.Paused || st.Status != "running" {
		t.Errorf("inspect after unpause: %+v", st)
	}
	if r := e.cfs("unpause", "counter"); r.code != 1 || !strings.Contains(r.stderr, "not paused") {
		t.Errorf("second unpause: %s", r)
	}
	// A paused container can still be removed (frozen tasks must be thawed
	// for SIGKILL to take).
	e.ok("pause", "counter")
	start := time.Now()
	e.ok("rm", "-f", "counter")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("rm -f of a paused container took %v", d)
	}
}

func TestCgroupNetClass(t *testing.T) {
	e := newEnv(t)
	b, _ := os.ReadFile("/proc/cgroups")
	if !strings.Contains(string(b), "net_cls") || !strings.Contains(string(b), "net_prio") {
		t.Skip("the kernel has no net_cls/net_prio controllers")
	}
	// The container finds itself in a net_cls,net_prio hierarchy with its
	// class; when the host has not mounted one, cfs mounts its own for
	// the container's lifetime (the suite's leak check sees it go).
	out := e.ok("run", "--rm", "--net-cls-classid", "0x100001", "--net-prio", "lo=5", "busybox", "cat", "/proc/self/cgroup")
	if !strings.Contains(out, "net_cls") {
		t.Fatalf("the container is in no net_cls cgroup:\n%s", out)
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), "/run/cfs/cgroup/") {
		t.Errorf("cfs's net_cls mount outlived its last container")
	}
}

func TestCgroupV2Knobs(t *testing.T) {
	if !cgUnified() {
		t.Skip("needs cgroup v2: the v2-only flags are refused on this host (see TestCgroupBadValues)")
	}
	e := newEnv(t)
	// memory.high throttles and reclaims but never kills: the allocation
	// that --memory 16m kills completes under --memory-high 16m.
	e.ok("run", "--rm", "--memory-high", "16m", "busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=20M", "count=1")
	e.startBg("knobs", "--memory-high", "32m", "--cpu-weight", "200", "busybox", "sleep", "30")
	dir := e.cgDir("knobs", "memory")
	if v := readCgUint(t, filepath.Join(dir, "memory.high"), ""); v != 32<<20 {
		t.Errorf("memory.high %d", v)
	}
	e.ok("update", "--cpu-weight", "50", "--memory-high", "64m", "knobs")
	if v := readCgUint(t, filepath.Join(dir, "cpu.weight"), ""); v != 50 {
		t.Errorf("cpu.weight %d after update, want 50", v)
	}
	if r := e.cfs("update", "--cpu-shares", "512", "--cpu-weight", "10", "knobs"); r.code == 0 {
		t.Errorf("update with both --cpu-shares and --cpu-weight: %s", r)
	}
}
