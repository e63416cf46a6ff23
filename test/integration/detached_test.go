package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/supervisor"
)

// stopSupervisor waits for the supervisor of root to exit (it does once
// idle) and kills it by pid if it does not: no process outlives a test.
func stopSupervisor(t *testing.T, root string) {
	deadline := time.Now().Add(supervisor.IdleExit + 3*time.Second)
	for time.Now().Before(deadline) {
		if supervisor.Pid(root) == 0 {
			supervisor.RemoveStale(root) // a killed supervisor's files
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	if pid := supervisor.Pid(root); pid > 0 {
		t.Errorf("supervisor %d of %s still running after idle exit: killing it", pid, root)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

func TestDetachedLifecycle(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "svc", "busybox", "sh", "-c",
		"trap 'echo got TERM; exit 0' TERM; echo started; echo to-stderr >&2; while true; do sleep 0.05; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a 64-hex ID", id)
	}
	ps := e.ok("ps")
	if !strings.Contains(ps, "svc") || !strings.Contains(ps, "Up ") {
		t.Fatalf("ps:\n%s", ps)
	}
	waitFor(t, func() bool { return strings.Contains(e.cfs("logs", "svc").stdout, "started") })
	if r := e.cfs("logs", "svc"); r.stdout != "started\n" || r.stderr != "to-stderr\n" {
		t.Errorf("logs keep stdout and stderr apart: %s", r)
	}
	insp := e.ok("inspect", "svc")
	for _, want := range []string{`"Status": "running"`, `"Running": true`} {
		if !strings.Contains(insp, want) {
			t.Errorf("inspect lacks %s", want)
		}
	}
	// stop: the stop signal reaches the program, which exits 0.
	start := time.Now()
	e.ok("stop", "-t", "5", "svc")
	if time.Since(start) > 4*time.Second {
		t.Errorf("stop took %v: the program did not get SIGTERM", time.Since(start))
	}
	if out := e.ok("inspect", "svc"); !strings.Contains(out, `"ExitCode": 0`) || !strings.Contains(out, `"Status": "exited"`) {
		t.Errorf("after stop:\n%s", out)
	}
	if out := e.cfs("logs", "svc").stdout; !strings.Contains(out, "got TERM") {
		t.Errorf("logs after stop: %q", out)
	}
	// Stopping a stopped container succeeds and changes nothing (Docker).
	e.ok("stop", "svc")
	// start again: same container, same writable layer.
	e.ok("start", "svc")
	waitFor(t, func() bool { return strings.Count(e.cfs("logs", "svc").stdout, "started") == 2 })
	// kill with a signal, then wait reports the status.
	e.ok("kill", "-s", "KILL", "svc")
	if out := strings.TrimSpace(e.ok("wait", "svc")); out != "137" {
		t.Errorf("wait after kill -9: %q, want 137", out)
	}
	if r := e.cfs("kill", "svc"); r.code != 1 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("kill of a stopped container: %s", r)
	}
	e.ok("rm", "svc")
	_ = id
}

func TestCreateStartWait(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.ok("create", "--name", "c1", "busybox", "sh", "-c", "echo hi; exit 7"))
	if out := e.ok("ps", "-a"); !strings.Contains(out, "Created") {
		t.Errorf("ps -a after create:\n%s", out)
	}
	r := e.cfs("start", "-a", "c1")
	if r.code != 7 || r.stdout != "hi\n" {
		t.Errorf("start -a: %s", r)
	}
	if out := strings.TrimSpace(e.ok("wait", id[:8])); out != "7" {
		t.Errorf("wait: %q", out)
	}
	// A command that does not exist fails at start with 127, as run.
	e.ok("create", "--name", "bad", "busybox", "no-such-cmd")
	if r := e.cfs("start", "bad"); r.code != 127 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("start of a missing command: %s", r)
	}
	if r := e.cfs("run", "-d", "busybox", "no-such-cmd"); r.code != 127 {
		t.Errorf("run -d of a missing command: %s", r)
	}
}

func TestRestartPolicy(t *testing.T) {
	e := newEnv(t)
	// on-failure:3: three restarts, with growing delays, then it stays down.
	e.ok("run", "-d", "--name", "flaky", "--restart", "on-failure:3", "busybox", "sh", "-c", "date +%s.%N; exit 1")
	waitFor(t, func() bool {
		r := e.cfs("inspect", "flaky")
		return strings.Contains(r.stdout, `"RestartCount": 3`) && strings.Contains(r.stdout, `"Status": "exited"`)
	})
	time.Sleep(500 * time.Millisecond)
	lines := strings.Fields(e.ok("logs", "flaky"))
	if len(lines) != 4 {
		t.Fatalf("ran %d times, want 4 (1 + 3 restarts): %q", len(lines), lines)
	}
	var times []float64
	for _, l := range lines {
		f, _ := strconv.ParseFloat(l, 64)
		times = append(times, f)
	}
	for i := 2; i < len(times); i++ {
		if d1, d2 := times[i-1]-times[i-2], times[i]-times[i-1]; d2 < d1*1.5 {
			t.Errorf("delays do not grow: %.3fs then %.3fs", d1, d2)
		}
	}
	// always: restarts after a clean exit too, until stopped.
	e.ok("run", "-d", "--name", "loop", "--restart", "always", "busybox", "sh", "-c", "sleep 0.1")
	waitFor(t, func() bool { return strings.Contains(e.cfs("inspect", "loop").stdout, `"RestartCount": 2`) })
	e.ok("stop", "loop")
	time.Sleep(1 * time.Second)
	if out := e.ok("inspect", "loop"); !strings.Contains(out, `"Status": "exited"`) {
		t.Errorf("a stopped always-container came back:\n%s", out)
	}
	if r := e.cfs("run", "--rm", "--restart", "always", "busybox", "true"); r.code != 125 {
		t.Errorf("--rm with --restart: %s", r)
	}
	if r := e.cfs("run", "--restart", "sometimes", "busybox", "true"); r.code != 125 || !strings.Contains(r.stderr, "--restart") {
		t.Errorf("bad --restart: %s", r)
	}
}

func TestConcurrentDetachedRuns(t *testing.T) {
	e := newEnv(t)
	const n = 100
	var wg sync.WaitGroup
	ids := make([]string, n)
	errs := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := e.cfs("run", "-d", "busybox", "sleep", "30")
			ids[i] = strings.TrimSpace(r.stdout)
			if r.code != 0 {
				errs[i] = r.String()
			}
		}(i)
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range ids {
		if errs[i] != "" {
			t.Errorf("run %d: %s", i, errs[i])
			continue
		}
		if seen[ids[i]] {
			t.Errorf("duplicate ID %s", ids[i])
		}
		seen[ids[i]] = true
	}
	out := e.ok("ps", "--format", "{{.Names}} {{.Status}}")
	names := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || f[1] != "Up" {
			t.Errorf("ps line %q: want a running container", l)
			continue
		}
		if names[f[0]] {
			t.Errorf("duplicate name %s", f[0])
		}
		names[f[0]] = true
	}
	if len(names) != n {
		t.Errorf("%d running containers, want %d", len(names), n)
	}
	all := strings.Fields(e.ok("ps", "-q"))
	e.ok(append([]string{"rm", "-f"}, all...)...)
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("left after rm -f: %q", out)
	}
}

// TestCrashInjection kills cfs (SIGKILL) at each step of creating and
// starting a detached container: ps must then tell the truth, and rm -f
// must remove everything.
func TestCrashInjection(t *testing.T) {
	steps := []string{"create:after-record", "create:after-files", "start:after-spawn", "start:after-setup", "start:after-start", "supervisor:after-exit"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			e := newEnv(t)
			cmd := e.command("run", "-d", "--name", "victim", "busybox", "sh", "-c", "sleep 0.2")
			cmd.Env = append(cmd.Env, "CFS_FAULT="+step)
			out, _ := cmd.CombinedOutput()
			time.Sleep(500 * time.Millisecond)
			ps := e.cfs("ps", "-a", "--format", "{{.Names}} {{.State}}")
			if ps.code != 0 {
				t.Fatalf("ps after a crash at %s: %s", step, ps)
			}
			if strings.Contains(ps.stdout, "running") && step != "start:after-start" {
				t.Errorf("ps says running after a crash at %s (run -d said %q):\n%s", step, out, ps.stdout)
			}
			for _, id := range strings.Fields(e.ok("ps", "-aq", "--no-trunc")) {
				e.ok("rm", "-f", id)
			}
			if out := e.ok("ps", "-aq"); out != "" {
				t.Errorf("rm -f left %q", out)
			}
			ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
			for _, d := range ents {
				if len(d.Name()) == 64 {
					t.Errorf("directory of container %s left", d.Name())
				}
			}
		})
	}
}

func TestDetachedErrors(t *testing.T) {
	e := newEnv(t)
	if r := e.cfs("stop", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no such container") {
		t.Errorf("stop of a missing container: %s", r)
	}
	e.ok("create", "--name", "idle", "busybox", "true")
	if r := e.cfs("kill", "idle"); r.code != 1 || !strings.Contains(r.stderr, "not running") {
		t.Errorf("kill of a created container: %s", r)
	}
	if r := e.cfs("rm", "-f", "idle"); r.code != 0 {
		t.Errorf("rm -f of a created container: %s", r)
	}
}

// TestBootAfterReboot simulates a host reboot (the supervisor and every
// container process killed with SIGKILL) and checks that `cfs system
// boot` brings back exactly the always and unless-stopped containers.
func TestBootAfterReboot(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "300")
	e.ok("run", "-d", "--name", "unless", "--restart", "unless-stopped", "busybox", "sleep", "300")
	e.ok("run", "-d", "--name", "stopped", "--restart", "unless-stopped", "busybox", "sleep", "300")
	e.ok("run", "-d", "--name", "never", "busybox", "sleep", "300")
	e.ok("stop", "-t", "1", "stopped")
	pids := strings.Fields(e.ok("ps", "--format", "{{.ID}}"))
	var inits []int
	for _, id := range pids {
		out := e.ok("inspect", "--format", "{{.State.Pid}}", id)
		if n, err := strconv.Atoi(strings.TrimSpace(out)); err == nil && n > 0 {
			inits = append(inits, n)
		}
	}
	if len(inits) != 3 {
		t.Fatalf("%d running inits, want 3", len(inits))
	}
	// The "reboot": the supervisor first, so that nobody records or
	// restarts anything, then the containers.
	if sup := supervisor.Pid(e.root); sup > 0 {
		syscall.Kill(sup, syscall.SIGKILL)
	}
	for _, p := range inits {
		syscall.Kill(p, syscall.SIGKILL)
	}
	time.Sleep(300 * time.Millisecond)
	out := e.ok("system", "boot")
	if n := len(strings.Fields(out)); n != 2 {
		t.Errorf("system boot started %d containers, want 2:\n%s", n, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(e.ok("ps", "-a", "--format", "{{.Names}} {{.State}}")), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			got[f[0]] = f[1]
		}
	}
	want := map[string]string{"always": "running", "unless": "running", "stopped": "exited", "never": "exited"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s, want %s", k, got[k], v)
		}
	}
	if unit := e.ok("system", "unit"); !strings.Contains(unit, "system boot") || !strings.Contains(unit, "CFS_ROOT="+e.root) {
		t.Errorf("system unit:\n%s", unit)
	}
}

// startTicks is a process's start time in clock ticks since boot
// (/proc/PID/stat field 22).
func startTicks(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	v, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func initPid(t *testing.T, e *env, ref string) int {
	t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(e.ok("inspect", "--format", "{{.State.Pid}}", ref)))
	if err != nil || pid <= 0 {
		t.Fatalf("inspect %s: pid %d, %v", ref, pid, err)
	}
	return pid
}

// spareLeftovers lists the markers of spares on the host and their cgroups.
func spareLeftovers(t *testing.T, root string) []string {
	t.Helper()
	var left []string
	ms, _ := os.ReadDir(engine.SparesDir)
	for _, m := range ms {
		left = append(left, filepath.Join(engine.SparesDir, m.Name()))
		if d, _ := filepath.Glob("/sys/fs/cgroup/*/cfs/" + m.Name()); len(d) > 0 {
			left = append(left, d...)
		}
	}
	// Ready spares' directories.
	ds, _ := filepath.Glob(filepath.Join(root, "containers", ".spares", "*"))
	return append(left, ds...)
}

// TestRunDetachedSpare: the supervisor keeps an init spawned ahead of the
// next run -d (engine/spare_linux.go). The second of two run -d's starts
// from it: its init was running before the command was typed, set up as a
// container of the first one's image and options (a ready spare: root
// filesystem, hostname, lo), and it starts the second one's own program,
// environment, user and working directory. A container that needs another
// spawn (-t, --network host) gets a fresh init, and the spare waits on;
// one that needs other mounts (-v) gets a fresh init, and the spare goes.
// The supervisor removes the spare (process, cgroup, directory, marker)
// when it exits, idle or on SIGTERM, and a supervisor killed with SIGKILL
// leaves its spare to the next cfs command, which removes it.
func TestRunDetachedSpare(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-d", "--name", "first", "busybox", "sleep", "100")
	waitFor(t, func() bool { return len(spareLeftovers(t, e.root)) > 0 })
	time.Sleep(200 * time.Millisecond)
	marker := exec.Command("sleep", "10")
	if err := marker.Start(); err != nil {
		t.Fatal(err)
	}
	defer marker.Process.Kill()
	defer marker.Wait()
	before := startTicks(t, marker.Process.Pid)
	time.Sleep(100 * time.Millisecond)
	vol := t.TempDir()
	for _, c := range []struct {
		name  string
		args  []string
		spare bool
	}{
		{"tty", []string{"-t"}, false},
		{"host", []string{"--network", "host"}, false},
		{"second", []string{"-e", "GREETING=hi there", "-w", "/tmp/work", "-u", "1000:1000"}, true},
		{"volume", []string{"-v", vol + ":/data"}, false},
	} {
		args := append(append([]string{"run", "-d", "--name", c.name}, c.args...),
			"busybox", "sh", "-c", `echo "$GREETING|$(pwd)|$(id -u):$(id -g)|$(hostname)|$(cat /etc/hostname)"; exec sleep 100`)
		e.ok(args...)
		started := startTicks(t, initPid(t, e, c.name))
		if fromSpare := started < before; fromSpare != c.spare {
			t.Errorf("%s: init started at tick %d, the command at %d: from a spare %v, want %v",
				c.name, started, before, fromSpare, c.spare)
		}
	}
	// The program, environment, user and working directory are the
	// second container's own; hostname and /etc files its ID's.
	id := strings.TrimSpace(e.ok("inspect", "--format", "{{.ID}}", "second"))
	want := "hi there|/tmp/work|1000:1000|" + id[:12] + "|" + id[:12] + "\n"
	out := ""
	for deadline := time.Now().Add(5 * time.Second); out == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		out = e.ok("logs", "second")
	}
	if out != want {
		t.Errorf("container from a ready spare printed %q, want %q", out, want)
	}
	if _, err := os.Stat(filepath.Join(e.root, "containers", id, "upper")); err != nil {
		t.Errorf("its writable layer is not in its directory: %v", err)
	}
	if out := e.ok("exec", "volume", "ls", "/data"); out != "" {
		t.Errorf("volume container: /data holds %q", out)
	}
	if out := e.ok("exec", "second", "sh", "-c", "hostname; ls /sys/class/net"); !strings.Contains(out, "lo") {
		t.Errorf("container started from a spare: %q", out)
	}
	// SIGTERM: the supervisor removes its spare and its files.
	waitFor(t, func() bool { return len(spareLeftovers(t, e.root)) > 0 })
	sup := supervisor.Pid(e.root)
	if sup <= 0 {
		t.Fatal("no supervisor")
	}
	syscall.Kill(sup, syscall.SIGTERM)
	waitFor(t, func() bool { return syscall.Kill(sup, 0) != nil })
	if left := spareLeftovers(t, e.root); len(left) > 0 {
		t.Errorf("after SIGTERM to the supervisor: %v", left)
	}
	for _, f := range supervisor.Files(e.root) {
		if _, err := os.Lstat(f); err == nil {
			t.Errorf("after SIGTERM to the supervisor: %s is left", f)
		}
	}
	// A SIGKILLed supervisor leaves its spare; the next command sweeps it.
	e.ok("run", "-d", "--name", "third", "busybox", "sleep", "100")
	waitFor(t, func() bool { return len(spareLeftovers(t, e.root)) > 0 })
	sup = supervisor.Pid(e.root)
	if sup <= 0 {
		t.Fatal("no supervisor")
	}
	syscall.Kill(sup, syscall.SIGKILL)
	waitFor(t, func() bool { return syscall.Kill(sup, 0) != nil })
	supervisor.RemoveStale(e.root)
	e.ok("ps", "-a")
	if left := spareLeftovers(t, e.root); len(left) > 0 {
		t.Errorf("after a killed supervisor and cfs ps: %v", left)
	}
	e.ok("rm", "-f", "first", "tty", "host", "second", "volume", "third")
	stopSupervisor(t, e.root)
	if left := spareLeftovers(t, e.root); len(left) > 0 {
		t.Errorf("after the supervisor's exit: %v", left)
	}
}
