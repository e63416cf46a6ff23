// Package oci tests cfs-runtime, the runc-compatible command line, as its
// clients use it: a bundle on disk, one process per verb. It needs root
// (namespaces, cgroups, mounts) and busybox-static. The runtime-tools
// conformance suite and the real clients (containerd, CRI, Podman) are the
// scripts beside this file.
package oci

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/runtime"
)

var runtimeBin string

func TestMain(m *testing.M) {
	if os.Getenv(subreaperEnv) != "" {
		os.Exit(subreaper(os.Args[1:]))
	}
	if os.Getuid() != 0 {
		fmt.Println("test/oci: skipped, needs root")
		os.Exit(0)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		fmt.Println("test/oci: skipped, needs busybox-static")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cfs-oci-test")
	if err != nil {
		panic(err)
	}
	runtimeBin = filepath.Join(dir, "cfs-runtime")
	build := exec.Command("go", "build", "-o", runtimeBin, "../../cmd/cfs-runtime")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("building cfs-runtime: %v\n%s", err, out)
		os.Exit(1)
	}
	hadParent, _ := filepath.Glob("/sys/fs/cgroup/*/cfs-runtime")
	code := m.Run()
	os.RemoveAll(dir)
	if code == 0 {
		code = leakCheck()
	}
	// The /cfs-runtime parent cgroup stays between containers; remove it
	// if this suite made it.
	if len(hadParent) == 0 {
		parents, _ := filepath.Glob("/sys/fs/cgroup/*/cfs-runtime")
		for _, p := range parents {
			os.Remove(p)
		}
	}
	os.Exit(code)
}

// leakCheck fails the suite if a container process or cgroup of ours
// outlived its test.
func leakCheck() int {
	out, _ := exec.Command("sh", "-c", "ps -eo pid,args | grep -F 'cfs-oci-test' | grep -v grep").Output()
	if len(bytes.TrimSpace(out)) > 0 {
		fmt.Printf("leak: processes left:\n%s", out)
		return 1
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/cfs-runtime/ocitest-*"); len(m) > 0 {
		fmt.Printf("leak: cgroups left: %v\n", m)
		return 1
	}
	return 0
}

// env is one test's runtime root and bundle.
type env struct {
	t      *testing.T
	root   string
	bundle string
	spec   *specs.Spec
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, root: filepath.Join(dir, "state"), bundle: filepath.Join(dir, "bundle")}
	rootfs := filepath.Join(e.bundle, "rootfs")
	for _, d := range []string{"bin", "dev", "proc", "sys", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command("/bin/busybox", "--list").Output()
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			os.Symlink("busybox", filepath.Join(rootfs, "bin", a))
		}
	}
	e.run("spec", "--bundle", e.bundle)
	b, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	e.spec = new(specs.Spec)
	if err := json.Unmarshal(b, e.spec); err != nil {
		t.Fatal(err)
	}
	e.spec.Process.Terminal = false
	e.spec.Root.Readonly = false
	t.Cleanup(func() {
		ids, _ := runtime.StateRoot(e.root).List()
		for _, id := range ids {
			exec.Command(runtimeBin, "--root", e.root, "delete", "-f", id).Run()
		}
	})
	return e
}

// id returns a container ID unique to the test.
func (e *env) id(name string) string {
	return "ocitest-" + strings.ToLower(strings.ReplaceAll(e.t.Name(), "/", "-")) + "-" + name
}

func (e *env) save() {
	e.t.Helper()
	e.spec.Linux.CgroupsPath = "" // /cfs-runtime/<id>
	b, err := json.Marshal(e.spec)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.bundle, "config.json"), b, 0o644); err != nil {
		e.t.Fatal(err)
	}
}

// cmd runs cfs-runtime --root ROOT args... and returns stdout, stderr and
// the exit code.
func (e *env) cmd(stdin string, args ...string) (string, string, int) {
	e.t.Helper()
	c := exec.Command(runtimeBin, append([]string{"--root", e.root}, args...)...)
	// Files, not pipes: a created container's init keeps create's stdio
	// (it is the program's), and a pipe would not end before it does.
	dir := e.t.TempDir()
	in, _ := os.Create(filepath.Join(dir, "in"))
	in.WriteString(stdin)
	in.Seek(0, 0)
	out, _ := os.Create(filepath.Join(dir, "out"))
	errf, _ := os.Create(filepath.Join(dir, "err"))
	defer in.Close()
	defer out.Close()
	defer errf.Close()
	c.Stdin, c.Stdout, c.Stderr = in, out, errf
	c.Dir = e.bundle
	err := c.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatal(err)
	}
	ob, _ := os.ReadFile(out.Name())
	eb, _ := os.ReadFile(errf.Name())
	return string(ob), string(eb), code
}

// run is cmd that must succeed.
func (e *env) run(args ...string) string {
	e.t.Helper()
	out, errs, code := e.cmd("", args...)
	if code != 0 {
		e.t.Fatalf("cfs-runtime %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

func (e *env) state(id string) specs.State {
	e.t.Helper()
	var s specs.State
	if err := json.Unmarshal([]byte(e.run("state", id)), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func (e *env) waitStatus(id string, want specs.ContainerState) {
	e.t.Helper()
	for i := 0; i < 200; i++ {
		if e.state(id).Status == want {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("%s never became %s (is %s)", id, want, e.state(id).Status)
}

func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	e.spec.Process.Args = []string{"sleep", "60"}
	e.save()
	id := e.id("c")
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.run("create", "--bundle", e.bundle, "--pid-file", pidFile, id)
	s := e.state(id)
	if s.Status != specs.StateCreated || s.Pid <= 0 || s.Bundle != e.bundle || s.ID != id {
		t.Fatalf("after create: %+v", s)
	}
	b, _ := os.ReadFile(pidFile)
	if strconv.Itoa(s.Pid) != string(b) {
		t.Errorf("pid file %q, state pid %d", b, s.Pid)
	}
	if _, _, code := e.cmd("", "create", "--bundle", e.bundle, id); code == 0 {
		t.Error("create of an existing ID succeeded")
	}
	if _, _, code := e.cmd("", "delete", id); code == 0 {
		t.Error("delete of a created container without -f succeeded")
	}
	e.run("start", id)
	if s := e.state(id); s.Status != specs.StateRunning {
		t.Fatalf("after start: %s", s.Status)
	}
	if _, _, code := e.cmd("", "start", id); code == 0 {
		t.Error("second start succeeded")
	}
	var list []map[string]any
	json.Unmarshal([]byte(e.run("list", "--format", "json")), &list)
	if len(list) != 1 || list[0]["id"] != id {
		t.Errorf("list: %v", list)
	}
	var pids []int
	json.Unmarshal([]byte(e.run("ps", "--format", "json", id)), &pids)
	if len(pids) != 2 { // init and sleep
		t.Errorf("ps: %v", pids)
	}
	e.run("pause", id)
	if s := e.state(id); s.Status != "paused" {
		t.Errorf("after pause: %s", s.Status)
	}
	e.run("resume", id)
	e.run("kill", id, "TERM")
	e.waitStatus(id, specs.StateStopped)
	if _, _, code := e.cmd("", "kill", id, "KILL"); code == 0 {
		t.Error("kill of a stopped container succeeded")
	}
	e.run("delete", id)
	if _, _, code := e.cmd("", "state", id); code == 0 {
		t.Error("state after delete succeeded")
	}
	if m, _ := filepath.Glob("/sys/fs/cgroup/*/cfs-runtime/" + id); len(m) > 0 {
		t.Errorf("cgroups left: %v", m)
	}
}

func TestRunExitStatusAndStdio(t *testing.T) {
	e := newEnv(t)
	e.spec.Process.Args = []string{"sh", "-c", "read x; echo got $x; echo err >&2; exit 3"}
	e.save()
	out, errs, code := e.cmd("hello\n", "run", "--bundle", e.bundle, e.id("c"))
	if code != 3 || out != "got hello\n" || errs != "err\n" {
		t.Errorf("run: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// A program that cannot be executed: start succeeds, the container
	// stops with the shell's status.
	e.spec.Process.Args = []string{"/no/such/program"}
	e.save()
	_, errs, code = e.cmd("", "run", "--bundle", e.bundle, e.id("missing"))
	if code != 127 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing program: exit %d, stderr %q", code, errs)
	}
}

func TestExec(t *testing.T) {
	e := newEnv(t)
	e.spec.Process.Args = []string{"sleep", "60"}
	e.save()
	id := e.id("c")
	e.run("run", "-d", "--bundle", e.bundle, id)
	out, _, code := e.cmd("in", "exec", id, "sh", "-c", "cat; echo; echo $$; exit 4")
	if code != 4 || !strings.HasPrefix(out, "in\n") {
		t.Errorf("exec: exit %d, out %q", code, out)
	}
	// It shares the container's PID namespace (sleep is pid 8 or so).
	out = e.run("exec", id, "ps")
	if !strings.Contains(out, "sleep 60") {
		t.Errorf("exec ps: %q", out)
	}
	// process.json with a user and an environment.
	p := *e.spec.Process
	p.Args = []string{"sh", "-c", "id -u; echo $FOO"}
	p.User = specs.User{UID: 65534, GID: 65534}
	p.Env = append(p.Env, "FOO=bar")
	b, _ := json.Marshal(p)
	pf := filepath.Join(t.TempDir(), "process.json")
	os.WriteFile(pf, b, 0o644)
	if out := e.run("exec", "-p", pf, id); out != "65534\nbar\n" {
		t.Errorf("exec -p: %q", out)
	}
	// Detached: the pid file names a waiter that exits with the status.
	pidFile := filepath.Join(t.TempDir(), "pid")
	e.run("exec", "-d", "--pid-file", pidFile, id, "sh", "-c", "sleep 0.2; exit 6")
	b, _ = os.ReadFile(pidFile)
	pid, _ := strconv.Atoi(string(b))
	if pid <= 0 {
		t.Fatalf("pid file %q", b)
	}
	deadline := time.Now().Add(5 * time.Second)
	for running(pid) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if running(pid) {
		t.Error("the detached exec's waiter did not exit")
	}
	// Killing the waiter kills the process.
	e.run("exec", "-d", "--pid-file", pidFile, id, "sleep", "30")
	b, _ = os.ReadFile(pidFile)
	pid, _ = strconv.Atoi(string(b))
	unix.Kill(pid, unix.SIGKILL)
	time.Sleep(300 * time.Millisecond)
	if out := e.run("exec", id, "ps"); strings.Contains(out, "sleep 30") {
		t.Errorf("exec'd process outlived its waiter:\n%s", out)
	}
	e.run("delete", "-f", id)
}

// subreaperEnv makes the test binary a stand-in for conmon and
// containerd's shim (see subreaper).
const subreaperEnv = "CFS_OCI_TEST_SUBREAPER"

// subreaper does what conmon and containerd's shim do with a detached
// exec: as a child subreaper, run `cfs-runtime ... exec -d --pid-file F
// ...` (args), then wait for the pid that F names (it is ours once the
// runtime exited) and print its exit status.
func subreaper(args []string) int {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "subreaper:", err)
		return 100
	}
	c := exec.Command(args[0], args[1:]...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "runtime exec:", err)
		return 100
	}
	b, err := os.ReadFile(os.Getenv(subreaperEnv))
	pid, _ := strconv.Atoi(string(b))
	if err != nil || pid <= 0 {
		fmt.Fprintf(os.Stderr, "pid file %q: %v\n", b, err)
		return 100
	}
	var ws unix.WaitStatus
	for {
		_, err = unix.Wait4(pid, &ws, 0, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "wait4(%d): %v\n", pid, err)
		return 100
	}
	if ws.Signaled() {
		fmt.Printf("signal %d\n", ws.Signal())
	} else {
		fmt.Printf("exit %d\n", ws.ExitStatus())
	}
	return 0
}

// The pid file of `exec -d` names a process that its reaper (conmon,
// containerd's shim) sees exit with the exec'd process's status, also
// when that process is over at once. (It used to be 1 now and then:
// podman exec C sh -c 'exit 6' reported 1, see TestExecWaiterUnknownPid.)
func TestExecDetachedStatus(t *testing.T) {
	e := newEnv(t)
	e.spec.Process.Args = []string{"sleep", "60"}
	e.save()
	id := e.id("c")
	e.run("run", "-d", "--bundle", e.bundle, id)
	defer e.cmd("", "delete", "-f", id)
	pidFile := filepath.Join(t.TempDir(), "pid")
	for i := 0; i < 30; i++ {
		want, cmd := "exit 6\n", []string{"sh", "-c", "exit 6"}
		if i%2 == 1 {
			want, cmd = "exit 0\n", []string{"true"}
		}
		os.Remove(pidFile)
		c := exec.Command(os.Args[0], append([]string{runtimeBin, "--root", e.root, "exec", "-d", "--pid-file", pidFile, id}, cmd...)...)
		c.Env = append(os.Environ(), subreaperEnv+"="+pidFile)
		var errb bytes.Buffer
		c.Stderr = &errb
		out, err := c.Output()
		if err != nil || string(out) != want {
			t.Fatalf("run %d, %v: got %q, want %q (%v)\n%s", i, cmd, out, want, err, errb.String())
		}
	}
}

// The waiter of a detached exec reports the status that init sends, also
// when the process's pid is unknown: a process that exits at once is
// often reaped by init before the runtime reads its pid from the pidfd
// (fdinfo then says "Pid: -1"). The waiter took that "-1" for a flag and
// exited 1. Deterministic: the process is reaped before the waiter starts.
func TestExecWaiterUnknownPid(t *testing.T) {
	e := newEnv(t)
	e.spec.Process.Args = []string{"sleep", "60"}
	e.save()
	id := e.id("c")
	e.run("run", "-d", "--bundle", e.bundle, id)
	defer e.cmd("", "delete", "-f", id)
	for _, arg := range []string{"-1", "0"} {
		p, err := runtime.Exec(&specs.Process{Args: []string{"sh", "-c", "exit 6"}, Cwd: "/", Env: e.spec.Process.Env},
			runtime.ExecOptions{Control: runtime.StateRoot(e.root).ControlPath(id)})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for p.Pid > 0 && time.Now().Before(deadline) {
			if _, _, err := runtime.ProcStat(p.Pid); err != nil {
				break // reaped by init
			}
			time.Sleep(5 * time.Millisecond)
		}
		conn, err := p.Conn()
		if err != nil {
			t.Fatal(err)
		}
		w := exec.Command(runtimeBin, "__exec-wait", arg)
		w.ExtraFiles = []*os.File{conn}
		out, err := w.CombinedOutput()
		conn.Close()
		p.Close()
		if w.ProcessState == nil || w.ProcessState.ExitCode() != 6 {
			t.Errorf("waiter with pid %s: %v, want exit status 6\n%s", arg, err, out)
		}
	}
}

// The exec'd process gets the container's restrictions: bounding set,
// no_new_privs, seccomp, user namespace.
func TestExecSecurity(t *testing.T) {
	e := newEnv(t)
	e.spec.Process.Args = []string{"sleep", "60"}
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}
	e.spec.Linux.Resources = nil
	e.save()
	// The container's root (host uid 200000) must traverse to its rootfs.
	os.Chmod(filepath.Dir(e.bundle), 0o755)
	os.Chmod(filepath.Dir(filepath.Dir(e.bundle)), 0o755)
	id := e.id("c")
	e.run("run", "-d", "--bundle", e.bundle, id)
	out := e.run("exec", id, "sh", "-c", "grep -E 'CapBnd|NoNewPrivs|Seccomp:' /proc/self/status; cat /proc/self/uid_map; mkdir /tmp/x 2>&1; true")
	for _, want := range []string{"CapBnd:\t00000000000000000000000000000000"[:8], "NoNewPrivs:\t1", "Seccomp:\t2", "200000", "Operation not permitted"} {
		if !strings.Contains(out, want) {
			t.Errorf("exec: %q missing from\n%s", want, out)
		}
	}
	if !strings.Contains(out, "CapBnd:\t00000000000004") && !strings.Contains(out, "CapBnd:\t0000000020000420") {
		t.Logf("bounding set: %s", out)
	}
	e.run("delete", "-f", id)
}

func TestHooksOrderAndState(t *testing.T) {
	e := newEnv(t)
	log := filepath.Join(t.TempDir(), "hooks.log")
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
			fmt.Sprintf(`read s; echo "%s $(echo "$s" | grep -o '"status":"[a-z]*"')" >> %s`, name, log)}}
	}
	// startContainer runs in the container: busybox sh, a log in the rootfs.
	inner := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer >> /hooks.log"}}
	e.spec.Hooks = &specs.Hooks{
		Prestart:        []specs.Hook{hook("prestart")},
		CreateRuntime:   []specs.Hook{hook("createRuntime")},
		CreateContainer: []specs.Hook{hook("createContainer")},
		StartContainer:  []specs.Hook{inner},
		Poststart:       []specs.Hook{hook("poststart")},
		Poststop:        []specs.Hook{hook("poststop")},
	}
	e.spec.Process.Args = []string{"sh", "-c", "echo program >> /hooks.log"}
	e.save()
	id := e.id("c")
	e.run("create", "--bundle", e.bundle, id)
	e.run("start", id)
	e.waitStatus(id, specs.StateStopped)
	e.run("delete", id)
	b, _ := os.ReadFile(log)
	want := `prestart "status":"created"
createRuntime "status":"creating"
createContainer "status":"creating"
poststart "status":"running"
poststop "status":"stopped"
`
	if string(b) != want {
		t.Errorf("hooks ran:\n%s\nwant:\n%s", b, want)
	}
	b, _ = os.ReadFile(filepath.Join(e.bundle, "rootfs/hooks.log"))
	if string(b) != "startContainer\nprogram\n" {
		t.Errorf("in the container: %q", b)
	}
	// A failing createRuntime hook fails create and leaves nothing.
	e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/false"}}}
	e.save()
	if _, errs, code := e.cmd("", "create", "--bundle", e.bundle, e.id("fail")); code == 0 || !strings.Contains(errs, "createRuntime hook") {
		t.Errorf("failing hook: exit %d, %s", code, errs)
	}
	if _, _, code := e.cmd("", "state", e.id("fail")); code == 0 {
		t.Error("state exists after a failed create")
	}
}

// A startContainer hook that never reads the state on its stdin must not
// cost the program its life: init, which forwards the signals it gets to
// the program, once got SIGPIPE from feeding that state through a pipe
// and killed the program with it (status 141). The state (annotations
// included) is larger than a pipe's buffer so that the old way fails
// every time; the program waits so that a stray signal reaches it.
func TestStartContainerHookIgnoringStdin(t *testing.T) {
	e := newEnv(t)
	e.spec.Annotations = map[string]string{"big": strings.Repeat("x", 100<<10)}
	e.spec.Hooks = &specs.Hooks{
		CreateContainer: []specs.Hook{{Path: "/bin/true"}},
		StartContainer:  []specs.Hook{{Path: "/bin/true"}},
	}
	e.spec.Process.Args = []string{"sh", "-c", "sleep 0.2; echo program > /out"}
	e.save()
	id := e.id("c")
	e.run("create", "--bundle", e.bundle, id)
	e.run("start", id)
	e.waitStatus(id, specs.StateStopped)
	e.run("delete", id)
	if b, _ := os.ReadFile(filepath.Join(e.bundle, "rootfs/out")); string(b) != "program\n" {
		t.Errorf("the program wrote %q, want \"program\\n\"", b)
	}
}

// Namespaces joined by path, the PID namespace included, through a holder
// made by unshare(1).
func TestJoinNamespaces(t *testing.T) {
	e := newEnv(t)
	holder := exec.Command("unshare", "--net", "--uts", "--ipc", "--pid", "--fork", "sleep", "60")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-holder.Process.Pid, syscall.SIGKILL); holder.Wait() })
	hp := holder.Process.Pid
	time.Sleep(100 * time.Millisecond)
	var nss []specs.LinuxNamespace
	for _, n := range e.spec.Linux.Namespaces {
		switch n.Type {
		case specs.NetworkNamespace:
			n.Path = fmt.Sprintf("/proc/%d/ns/net", hp)
		case specs.UTSNamespace:
			n.Path = fmt.Sprintf("/proc/%d/ns/uts", hp)
		case specs.IPCNamespace:
			n.Path = fmt.Sprintf("/proc/%d/ns/ipc", hp)
		case specs.PIDNamespace:
			n.Path = fmt.Sprintf("/proc/%d/ns/pid_for_children", hp)
		}
		nss = append(nss, n)
	}
	e.spec.Linux.Namespaces = nss
	e.spec.Hostname = ""
	e.spec.Process.Args = []string{"sleep", "60"}
	e.save()
	id := e.id("c")
	e.run("create", "--bundle", e.bundle, id)
	pid := e.state(id).Pid
	for _, n := range []string{"net", "uts", "ipc", "pid"} {
		want, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", hp, n))
		if n == "pid" {
			want, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid_for_children", hp))
		}
		got, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
		if got != want {
			t.Errorf("%s namespace: %s, want %s", n, got, want)
		}
	}
	e.run("delete", "-f", id)
	// A user namespace cannot be joined from a Go process: a clear error.
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace, Path: fmt.Sprintf("/proc/%d/ns/user", hp)})
	e.save()
	if _, errs, code := e.cmd("", "create", "--bundle", e.bundle, e.id("user")); code == 0 || !strings.Contains(errs, "single-threaded") {
		t.Errorf("joining a user namespace: exit %d, %s", code, errs)
	}
}

func TestTimeNamespaceOffsets(t *testing.T) {
	e := newEnv(t)
	e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
	e.spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: 86400 * 365}}
	e.spec.Process.Args = []string{"cat", "/proc/uptime"}
	e.save()
	out := e.run("run", "--bundle", e.bundle, e.id("c"))
	up, _ := strconv.ParseFloat(strings.Fields(out)[0], 64)
	if up < 86400*365 {
		t.Errorf("uptime in the container %q: boottime offset not applied", out)
	}
}

func TestSeccompAndCapabilities(t *testing.T) {
	e := newEnv(t)
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: func() *uint { v := uint(1); return &v }()}},
	}
	e.spec.Process.Capabilities.Ambient = nil
	e.spec.Process.Args = []string{"sh", "-c", "/bin/pwd; grep -E 'Cap(Bnd|Eff)|Seccomp:' /proc/self/status"}
	e.save()
	out, errs, _ := e.cmd("", "run", "--bundle", e.bundle, e.id("c"))
	if !strings.Contains(out+errs, "Operation not permitted") || !strings.Contains(out, "Seccomp:\t2") {
		t.Errorf("seccomp: %s %s", out, errs)
	}
	// runc spec's set: AUDIT_WRITE, KILL, NET_BIND_SERVICE.
	if !strings.Contains(out, "CapBnd:\t0000000020000420") {
		t.Errorf("bounding set: %s", out)
	}
	// A capability the kernel does not know is an error.
	e.spec.Process.Capabilities.Bounding = append(e.spec.Process.Capabilities.Bounding, "CAP_NOPE")
	e.save()
	if _, _, code := e.cmd("", "run", "--bundle", e.bundle, e.id("bad")); code == 0 {
		t.Error("unknown capability accepted")
	}
}

func TestConsoleSocket(t *testing.T) {
	e := newEnv(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(l, 1)
	e.spec.Process.Terminal = true
	e.spec.Process.ConsoleSize = &specs.Box{Height: 25, Width: 91}
	e.spec.Process.Args = []string{"sh", "-c", "tty; stty size"}
	e.save()
	id := e.id("c")
	got := make(chan *os.File, 1)
	go func() {
		f, err := runtime.RecvConsole(l)
		if err != nil {
			t.Error(err)
		}
		got <- f
	}()
	e.run("create", "--bundle", e.bundle, "--console-socket", sock, id)
	master := <-got
	if master == nil {
		t.FailNow()
	}
	defer master.Close()
	if master.Name() != "/dev/ptmx" {
		t.Errorf("console payload %q, want /dev/ptmx (runc's)", master.Name())
	}
	e.run("start", id)
	master.SetReadDeadline(time.Now().Add(5 * time.Second))
	var buf bytes.Buffer
	b := make([]byte, 256)
	for !strings.Contains(buf.String(), "91") {
		n, err := master.Read(b)
		buf.Write(b[:n])
		if err != nil {
			break
		}
	}
	if out := buf.String(); !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "25 91") {
		t.Errorf("terminal output %q", out)
	}
	e.waitStatus(id, specs.StateStopped)
	e.run("delete", id)
}

func TestFeaturesAndSpec(t *testing.T) {
	e := newEnv(t)
	var f map[string]any
	if err := json.Unmarshal([]byte(e.run("features")), &f); err != nil {
		t.Fatal(err)
	}
	if f["ociVersionMax"] != "1.3.0" || f["linux"] == nil {
		t.Errorf("features: %v", f)
	}
	if _, _, code := e.cmd("", "spec", "--bundle", e.bundle); code == 0 {
		t.Error("spec overwrote config.json")
	}
	// Unsupported fields fail clearly.
	e.spec.Process.ApparmorProfile = "x"
	e.save()
	if _, errs, code := e.cmd("", "create", "--bundle", e.bundle, e.id("aa")); code == 0 || !strings.Contains(errs, "AppArmor") {
		t.Errorf("apparmor: exit %d %s", code, errs)
	}
}

// running reports whether pid exists and is not a zombie (its parent, the
// host's init, reaps it when it likes).
func running(pid int) bool {
	_, state, err := runtime.ProcStat(pid)
	return err == nil && state != 'Z' && state != 'X'
}

// TestIdmappedBindMount: a bind mount with uidMappings/gidMappings and the
// idmap option shows files owned on disk by a mapping's containerID as its
// hostID, and files the container creates through it get the containerID
// on disk; ids outside the mapping show as the overflow id.
func TestIdmappedBindMount(t *testing.T) {
	e := newEnv(t)
	src := t.TempDir()
	sub := filepath.Join(src, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for p, id := range map[string]int{src: 1000, filepath.Join(src, "f"): 1000, sub: 2000} {
		if err := os.Chown(p, id, id); err != nil {
			t.Fatal(err)
		}
	}
	maps := []specs.LinuxIDMapping{{ContainerID: 1000, HostID: 0, Size: 1}}
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: src,
		Options: []string{"rbind", "idmap"}, UIDMappings: maps, GIDMappings: maps})
	e.spec.Process.Args = []string{"sh", "-c", "stat -c %u:%g /data/f /data/sub && touch /data/new && stat -c %u:%g /data/new"}
	e.save()
	out, errs, code := e.cmd("", "run", "--bundle", e.bundle, e.id("c"))
	if code != 0 || out != "0:0\n65534:65534\n0:0\n" {
		t.Fatalf("idmapped mount: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(filepath.Join(src, "new"), &st); err != nil || st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("a file made through the idmapped mount is %d:%d on disk (%v), want 1000:1000", st.Uid, st.Gid, err)
	}
	// Without mappings, idmap means the container's user namespace: none here.
	e.spec.Mounts[len(e.spec.Mounts)-1].UIDMappings = nil
	e.spec.Mounts[len(e.spec.Mounts)-1].GIDMappings = nil
	e.save()
	if _, errs, code := e.cmd("", "create", "--bundle", e.bundle, e.id("nouserns")); code == 0 || !strings.Contains(errs, "user namespace") {
		t.Errorf("idmap without mappings or user namespace: exit %d, %s", code, errs)
	}
	// Only bind mounts can be idmapped.
	e.spec.Mounts[len(e.spec.Mounts)-1] = specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs",
		Options: []string{"idmap"}, UIDMappings: maps, GIDMappings: maps}
	e.save()
	if _, errs, code := e.cmd("", "create", "--bundle", e.bundle, e.id("tmpfs")); code == 0 || !strings.Contains(errs, "bind mounts only") {
		t.Errorf("idmapped tmpfs: exit %d, %s", code, errs)
	}
}

// TestLargeSpec: a spec larger than one socket message (annotations of
// 300 KiB) reaches init through a memfd.
func TestLargeSpec(t *testing.T) {
	e := newEnv(t)
	e.spec.Annotations = map[string]string{"big": strings.Repeat("x", 300<<10)}
	e.spec.Process.Args = []string{"sh", "-c", "echo ok"}
	e.save()
	out, errs, code := e.cmd("", "run", "--bundle", e.bundle, e.id("c"))
	if code != 0 || out != "ok\n" {
		t.Errorf("large spec: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}
