// Package integration runs the built cfs binary as a user would, as root,
// with real containers. Each test gets its own CFS_ROOT; the suite ends
// with a leak check (cgroups, mounts, processes, links).
package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cfs-org/cfs/internal/supervisor"
)

var (
	cfsBin    string
	sharedDir string // ../shared/images beside the repository, if present
	// what existed before the suite, so the leak check blames only us
	before snapshotOfHost
)

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("integration tests need root: skipping")
		os.Exit(0)
	}
	repo := repoDir()
	tmp, err := os.MkdirTemp("", "cfs-it-bin-")
	if err != nil {
		panic(err)
	}
	cfsBin = filepath.Join(tmp, "cfs")
	if b := os.Getenv("CFS_BIN"); b != "" {
		cfsBin = b
	} else {
		build := exec.Command("go", "build", "-o", cfsBin, "./cmd/cfs")
		build.Dir = repo
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building cfs: %v\n%s", err, out)
			os.Exit(1)
		}
	}
	if d := filepath.Join(repo, "..", "shared", "images"); isDir(d) {
		sharedDir = d
	}
	before = takeSnapshot()
	parents, _ := filepath.Glob("/sys/fs/cgroup/*/cfs")
	hadParent := map[string]bool{}
	for _, p := range parents {
		hadParent[p] = true
	}
	code := m.Run()
	// cfs keeps its parent cgroup between containers (as Docker keeps
	// /docker); the suite removes the ones it made, once empty.
	parents, _ = filepath.Glob("/sys/fs/cgroup/*/cfs")
	for _, p := range parents {
		if !hadParent[p] {
			os.Remove(p)
		}
	}
	if leaks := before.leaks(takeSnapshot()); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "LEAK CHECK FAILED: the suite left behind:\n  %s\n", strings.Join(leaks, "\n  "))
		code = 1
	} else {
		fmt.Println("leak check: no cgroups, mounts, processes, links or supervisor files left behind")
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

// repoDir is the repository's top directory.
func repoDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// snapshotOfHost lists what containers could leak.
type snapshotOfHost struct {
	cgroups map[string]bool
	mounts  map[string]bool
	inits   map[string]bool
	links   map[string]bool
	// files are supervisors' files in supervisor.RunDir.
	files map[string]bool
}

func takeSnapshot() snapshotOfHost {
	s := snapshotOfHost{cgroups: map[string]bool{}, mounts: map[string]bool{}, inits: map[string]bool{}, links: map[string]bool{},
		files: map[string]bool{}}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/cfs")
	if isDir("/sys/fs/cgroup/cfs") {
		dirs = append(dirs, "/sys/fs/cgroup/cfs")
	}
	for _, d := range dirs {
		filepath.WalkDir(d, func(p string, de os.DirEntry, err error) error {
			if err == nil && de.IsDir() && p != d {
				s.cgroups[p] = true
			}
			return nil
		})
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) > 4 && (strings.Contains(f[4], "cfs") || strings.Contains(f[4], "/tmp/")) {
				s.mounts[f[4]] = true
			}
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("__cfs_init")) {
			s.inits[p] = true
		}
	}
	// A v1 hierarchy unmounted while it still had cgroups lives on in the
	// kernel, unmounted: /proc/cgroups then gives it a hierarchy number.
	if b, err := os.ReadFile("/proc/cgroups"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && (f[0] == "net_cls" || f[0] == "net_prio") && f[1] != "0" {
				if !isCgroupMounted(f[0]) {
					s.mounts["unmounted cgroup hierarchy of "+f[0]] = true
				}
			}
		}
	}
	links, _ := filepath.Glob("/sys/class/net/*")
	for _, l := range links {
		s.links[filepath.Base(l)] = true
	}
	files, _ := filepath.Glob(filepath.Join(supervisor.RunDir, "sup-*"))
	for _, f := range files {
		s.files[f] = true
	}
	return s
}

func (b snapshotOfHost) leaks(a snapshotOfHost) []string {
	var out []string
	diff := func(kind string, before, after map[string]bool) {
		for k := range after {
			if !before[k] {
				out = append(out, kind+": "+k)
			}
		}
	}
	// Processes take a moment to be reaped, and the kernel frees cgroups
	// (and with them an unmounted hierarchy) asynchronously.
	for i := 0; i < 100 && !b.covers(a); i++ {
		time.Sleep(20 * time.Millisecond)
		a = takeSnapshot()
	}
	diff("cgroup", b.cgroups, a.cgroups)
	diff("mount", b.mounts, a.mounts)
	diff("container init process", b.inits, a.inits)
	diff("network link", b.links, a.links)
	diff("supervisor file", b.files, a.files)
	sort.Strings(out)
	return out
}

// result is one cfs invocation.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %q\nstderr: %q", r.code, r.stdout, r.stderr)
}

// env is one test's cfs state directory.
type env struct {
	t    *testing.T
	root string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	// Not t.TempDir: its parents are 0700, and a --userns remap container
	// (host uid 100000) must be able to reach its own directory.
	root, err := os.MkdirTemp("", "cfs-test-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(root, 0o711)
	e := &env{t: t, root: root}
	t.Cleanup(func() { os.RemoveAll(root) })
	t.Cleanup(func() {
		// Remove every container the test left, running or not.
		r := e.cfs("ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(r.stdout) {
			e.cfs("rm", "-f", id)
		}
		stopSupervisor(t, root)
	})
	return e
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(cfsBin, args...)
	cmd.Env = append(os.Environ(), "CFS_ROOT="+e.root)
	return cmd
}

func (e *env) cfs(args ...string) result {
	return e.cfsIn("", args...)
}

func (e *env) cfsIn(stdin string, args ...string) result {
	cmd := e.command(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("cfs %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs cfs and fails the test unless it exits 0; it returns stdout.
func (e *env) ok(args ...string) string {
	e.t.Helper()
	r := e.cfs(args...)
	if r.code != 0 {
		e.t.Fatalf("cfs %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// isCgroupMounted reports whether a v1 hierarchy with controller is mounted.
func isCgroupMounted(controller string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, " - cgroup ") && strings.Contains(l, controller) {
			return true
		}
	}
	return false
}

// covers reports whether a holds nothing that b does not.
func (b snapshotOfHost) covers(a snapshotOfHost) bool {
	for _, pair := range [][2]map[string]bool{{b.cgroups, a.cgroups}, {b.mounts, a.mounts}, {b.inits, a.inits}, {b.links, a.links},
		{b.files, a.files}} {
		for k := range pair[1] {
			if !pair[0][k] {
				return false
			}
		}
	}
	return true
}
