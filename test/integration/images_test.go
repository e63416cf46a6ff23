package integration

import (
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
)

func needShared(t *testing.T, name string) string {
	t.Helper()
	if sharedDir == "" {
		t.Skipf("needs ../shared/images beside the repository (not found)")
	}
	p := filepath.Join(sharedDir, name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("needs %s: %v", p, err)
	}
	return p
}

// TestThreeImages runs the original project's examples unchanged.
func TestThreeImages(t *testing.T) {
	e := newEnv(t)
	tc := needShared(t, "tinycore-7.0-core.gz")
	sl := needShared(t, "slitaz-4.0-rootfs.lzma")
	if out := e.ok("import", tc, "TinyCore"); !strings.HasPrefix(out, "sha256:") {
		t.Fatalf("import prints %q", out)
	}
	// stdin, and a file name that lies about the format
	f, _ := os.Open(sl)
	defer f.Close()
	cmd := e.command("import", "-", "SlitazOS")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import slitaz from stdin: %v\n%s", err, out)
	}
	if out := e.ok("run", "--rm", "TinyCore", "ls"); !strings.Contains(out, "etc\n") || !strings.Contains(out, "usr\n") {
		t.Errorf("TinyCore ls: %q", out)
	}
	if out := e.ok("run", "--rm", "SlitazOS", "sh", "-c", "cat /etc/slitaz-release; uname -m"); out != "4.0\nx86_64\n" {
		t.Errorf("SlitazOS: %q", out)
	}
	if out := e.ok("run", "--rm", "BusyBox", "pwd"); out != "/\n" {
		t.Errorf("BusyBox pwd: %q", out)
	}
	// Interactive shells of each image.
	for _, img := range []string{"tinycore", "SLITAZOS", "busybox"} {
		r := e.cfsIn("echo shell-$((1+1))\nexit 3\n", "run", "--rm", "-i", img, "sh")
		if r.code != 3 || !strings.Contains(r.stdout, "shell-2") {
			t.Errorf("%s sh: %s", img, r)
		}
	}
	out := e.ok("images")
	for _, want := range []string{"tinycore", "slitazos", "busybox"} {
		if !strings.Contains(out, want) {
			t.Errorf("images lacks %s:\n%s", want, out)
		}
	}
	// rmi refuses an image a container uses, then removes it.
	e.ok("run", "--name", "keep", "tinycore", "true")
	if r := e.cfs("rmi", "TinyCore"); r.code != 1 || !strings.Contains(r.stderr, "uses it") {
		t.Errorf("rmi of a used image: %s", r)
	}
	e.ok("rm", "keep")
	e.ok("rmi", "TinyCore")
	if r := e.cfs("run", "--rm", "tinycore", "true"); r.code != 125 {
		t.Errorf("run of a removed image: %s", r)
	}
	if r := e.cfs("import", "/etc/hostname", "junk"); r.code != 1 || !strings.Contains(r.stderr, "import") {
		t.Errorf("import of a non-archive: %s", r)
	}
	if r := e.cfs("import", tc, "Bad Name"); r.code != 1 {
		t.Errorf("import with a bad name: %s", r)
	}
}

// treeDigest hashes every path, mode, owner and content under dir.
func treeDigest(t *testing.T, dir string) string {
	h := sha256.New()
	var paths []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			paths = append(paths, p)
		}
		return nil
	})
	sort.Strings(paths)
	for _, p := range paths {
		st, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		fmt.Fprintf(h, "%s %v %d %d %d %d\n", p, st.Mode(), sys.Uid, sys.Gid, st.Size(), sys.Ino)
		if st.Mode().IsRegular() {
			f, _ := os.Open(p)
			io.Copy(h, f)
			f.Close()
		}
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// TestSharedLayers: containers of one image share the read-only layer
// (same inode), do not see each other's writes, and never change it.
func TestSharedLayers(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "--rm", "busybox", "true") // make the built-in image
	layers, _ := filepath.Glob(filepath.Join(e.root, "layers", "*"))
	var layer string
	for _, l := range layers {
		if _, err := os.Stat(filepath.Join(l, "bin", "busybox")); err == nil {
			layer = l
		}
	}
	if layer == "" {
		t.Fatalf("no layer with bin/busybox in %v", layers)
	}
	before := treeDigest(t, layer)
	st, _ := os.Stat(filepath.Join(layer, "bin", "busybox"))
	hostIno := st.Sys().(*syscall.Stat_t).Ino

	inoA := strings.TrimSpace(e.ok("run", "--name", "a", "busybox", "sh", "-c",
		"stat -c %i /bin/busybox; echo a > /etc/only-a; rm /bin/ls; mv /etc/passwd /etc/passwd.moved; echo x >> /etc/group"))
	inoB := strings.TrimSpace(e.ok("run", "--name", "b", "busybox", "stat", "-c", "%i", "/bin/busybox"))
	if inoA != inoB || inoA != fmt.Sprint(hostIno) {
		t.Errorf("inode of /bin/busybox: a %s, b %s, layer %d: want all equal", inoA, inoB, hostIno)
	}
	out := e.ok("run", "--rm", "busybox", "sh", "-c", "ls /etc/only-a 2>&1; ls /bin/ls; ls /etc/passwd")
	if !strings.Contains(out, "No such file") || !strings.Contains(out, "/bin/ls") || !strings.Contains(out, "/etc/passwd") {
		t.Errorf("a new container sees another's changes: %q", out)
	}
	if after := treeDigest(t, layer); after != before {
		t.Errorf("the read-only layer changed after containers wrote, deleted and renamed files")
	}
	// The writes landed in a's own upper directory.
	id := strings.TrimSpace(e.ok("ps", "-aq", "--no-trunc"))
	_ = id
	ups, _ := filepath.Glob(filepath.Join(e.root, "containers", "*", "upper", "etc", "only-a"))
	if len(ups) != 1 {
		t.Errorf("only-a in %d upper dirs, want 1", len(ups))
	}
}

func TestExplain(t *testing.T) {
	e := newEnv(t)
	r := e.cfs("run", "--rm", "--explain", "busybox", "true")
	if r.code != 0 {
		t.Fatal(r)
	}
	order := []string{"clone ", "CLONE_NEWPID", "cgroup   mkdir", "overlay on", "proc on /proc",
		"mknod(/dev/null", "pivot_root", "mask     /proc/kcore", "sethostname", "CLONE_NEWCGROUP", "PR_CAPBSET_DROP", "execve(\"/bin/true\"", "cgroup   rmdir"}
	pos := 0
	for _, w := range order {
		i := strings.Index(r.stderr[pos:], w)
		if i < 0 {
			t.Fatalf("--explain lacks %q after position %d:\n%s", w, pos, r.stderr)
		}
		pos += i
	}
	// Joining the cgroup runs concurrently with init's mounts: no order.
	if !strings.Contains(r.stderr, "cgroup.procs") && !strings.Contains(r.stderr, "/tasks") && !strings.Contains(r.stderr, "CLONE_INTO_CGROUP") {
		t.Errorf("--explain does not show the cgroup join:\n%s", r.stderr)
	}
	if r := e.cfs("run", "--rm", "busybox", "true"); r.stderr != "" {
		t.Errorf("without --explain, stderr %q", r.stderr)
	}
}
