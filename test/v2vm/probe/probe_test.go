package probe

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

const (
	cgRoot = "/sys/fs/cgroup"
	// cgroup2Magic is CGROUP2_SUPER_MAGIC from linux/magic.h.
	cgroup2Magic = 0x63677270
)

// requireVM skips the test unless it runs in the harness's VM: writing into the
// root cgroup of a developer's machine or CI host is not ours to do.
func requireVM(t *testing.T) {
	t.Helper()
	if os.Getenv("CFS_V2VM") != "1" {
		t.Skipf("only runs inside the v2 VM (CFS_V2VM is unset; run make test-v2)")
	}
	if _, err := os.Stat(filepath.Join(cgRoot, "cgroup.controllers")); err != nil {
		t.Skipf("only runs inside the v2 VM: %v", err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func writeFile(t *testing.T, path, value string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		t.Fatalf("writing %q to %s: %v", value, path, err)
	}
}

func TestUnifiedHierarchy(t *testing.T) {
	requireVM(t)
	var st syscall.Statfs_t
	if err := syscall.Statfs(cgRoot, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != cgroup2Magic {
		t.Fatalf("%s: filesystem type %#x, want cgroup2 (%#x)", cgRoot, st.Type, cgroup2Magic)
	}
	// No v1 hierarchy anywhere: mountinfo's fstype (after " - ") is never "cgroup".
	for _, line := range strings.Split(readFile(t, "/proc/self/mountinfo"), "\n") {
		if _, post, ok := strings.Cut(line, " - "); ok && strings.HasPrefix(post, "cgroup ") {
			t.Errorf("cgroup v1 mount present: %s", line)
		}
	}
	// On a unified host /proc/self/cgroup has exactly one line, "0::<path>".
	self := readFile(t, "/proc/self/cgroup")
	if strings.Contains(self, "\n") || !strings.HasPrefix(self, "0::/") {
		t.Fatalf("/proc/self/cgroup = %q, want a single 0::/... line", self)
	}
	if !strings.Contains(readFile(t, "/proc/self/mountinfo"), "nsdelegate") {
		t.Errorf("cgroup2 is not mounted with nsdelegate")
	}
}

func TestControllers(t *testing.T) {
	requireVM(t)
	available := strings.Fields(readFile(t, filepath.Join(cgRoot, "cgroup.controllers")))
	enabled := strings.Fields(readFile(t, filepath.Join(cgRoot, "cgroup.subtree_control")))
	t.Logf("controllers %v, enabled for children %v", available, enabled)
	for _, want := range []string{"cpu", "cpuset", "io", "memory", "pids"} {
		if !slices.Contains(available, want) {
			t.Errorf("controller %s not available", want)
		}
		if !slices.Contains(enabled, want) {
			t.Errorf("controller %s not enabled in %s/cgroup.subtree_control", want, cgRoot)
		}
	}
}

func TestPidsMax(t *testing.T) {
	requireVM(t)
	dir := filepath.Join(cgRoot, "cfs-probe-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing cgroup: %v", err)
		}
	})
	if ctrl := strings.Fields(readFile(t, filepath.Join(dir, "cgroup.controllers"))); !slices.Contains(ctrl, "pids") {
		t.Fatalf("child cgroup controllers %v lack pids", ctrl)
	}

	writeFile(t, filepath.Join(dir, "pids.max"), "1")
	if got := readFile(t, filepath.Join(dir, "pids.max")); got != "1" {
		t.Fatalf("pids.max = %q after writing 1", got)
	}

	// Start a shell directly inside the cgroup (clone3 CLONE_INTO_CGROUP, as a
	// runtime may do); it is the one task allowed, so its own fork must fail.
	fd, err := syscall.Open(dir, syscall.O_DIRECTORY|syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	cmd := exec.Command("/bin/sh", "-c", "/bin/true & wait $!")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("shell in the cgroup: err=%v output=%q", err, out.String())
	if err == nil {
		t.Errorf("fork inside a cgroup with pids.max=1 succeeded")
	}
	events := readFile(t, filepath.Join(dir, "pids.events"))
	if n, _ := strconv.Atoi(strings.TrimPrefix(events, "max ")); n < 1 {
		t.Errorf("pids.events = %q, want max >= 1", events)
	}

	writeFile(t, filepath.Join(dir, "pids.max"), "max")
	if got := readFile(t, filepath.Join(dir, "pids.max")); got != "max" {
		t.Fatalf("pids.max = %q after writing max", got)
	}
}

// TestPivotRoot checks the guest's /init trick: pivot_root fails with EINVAL
// while / is the initramfs, and every container runtime needs it.
func TestPivotRoot(t *testing.T) {
	requireVM(t)
	script := `mount --make-rprivate / && mount -t tmpfs none /mnt && mkdir /mnt/old &&
		cd /mnt && pivot_root . old && echo pivoted`
	out, err := exec.Command("unshare", "-m", "sh", "-c", script).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "pivoted" {
		t.Fatalf("pivot_root in a new mount namespace: %v: %s", err, out)
	}
}

func TestModules(t *testing.T) {
	requireVM(t)
	if fs := readFile(t, "/proc/filesystems"); !strings.Contains(fs, "\toverlay") {
		t.Errorf("overlay filesystem not registered")
	}
	for _, m := range []string{"veth", "bridge"} {
		if _, err := os.Stat(filepath.Join("/sys/module", m)); err != nil {
			t.Errorf("module %s not loaded: %v", m, err)
		}
	}
}
