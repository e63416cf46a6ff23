package integration

import (
	"archive/tar"
	"compress/gzip"
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRunEchoAndExitCodes(t *testing.T) {
	e := newEnv(t)
	if out := e.ok("run", "--rm", "busybox", "echo", "hello", "world"); out != "hello world\n" {
		t.Fatalf("echo: got %q", out)
	}
	cases := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"exit status passes through", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"killed by a signal is 128+n", []string{"sh", "-c", "kill -TERM $$; sleep 5"}, 143, ""},
		{"killed by SIGKILL", []string{"sh", "-c", "kill -KILL $$"}, 137, ""},
		{"command not found", []string{"no-such-command"}, 127, `exec "no-such-command": executable file not found in $PATH`},
		{"absolute path not found", []string{"/nope/cmd"}, 127, "no such file or directory"},
		{"not executable", []string{"/etc/passwd"}, 126, "permission denied"},
		{"a directory", []string{"/etc"}, 126, "is a directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.cfs(append([]string{"run", "--rm", "busybox"}, tc.args...)...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.err) {
				t.Fatalf("want exit %d and stderr containing %q, got %s", tc.code, tc.err, r)
			}
		})
	}
	if out := e.ok("ps", "-aq"); out != "" {
		t.Fatalf("--rm containers still listed: %q", out)
	}
}

func TestIsolation(t *testing.T) {
	e := newEnv(t)
	t.Run("pid 1 and no host processes", func(t *testing.T) {
		out := e.ok("run", "--rm", "busybox", "sh", "-c", "echo $PPID; ls /proc | grep -c '^[0-9]'")
		f := strings.Fields(out)
		if len(f) != 2 {
			t.Fatalf("got %q", out)
		}
		// init is pid 1 and forks the program, so the program's parent is 1.
		if f[0] != "1" {
			t.Errorf("the program's parent pid: got %s, want 1", f[0])
		}
		if n, _ := strconv.Atoi(f[1]); n > 5 { // init, sh, ls, grep
			t.Errorf("container sees %d processes: host processes are visible", n)
		}
		comm := e.ok("run", "--rm", "busybox", "cat", "/proc/1/cmdline")
		if !strings.Contains(comm, "__cfs_init") {
			t.Errorf("pid 1 is %q, want the cfs init", comm)
		}
	})
	t.Run("hostname", func(t *testing.T) {
		host, _ := os.Hostname()
		if out := e.ok("run", "--rm", "--hostname", "box1", "busybox", "sh", "-c", "hostname; cat /etc/hostname; hostname other 2>/dev/null || echo denied"); out != "box1\nbox1\ndenied\n" {
			t.Errorf("got %q", out)
		}
		if h, _ := os.Hostname(); h != host {
			t.Errorf("host name changed from %q to %q", host, h)
		}
		// default: the ID's first 12 characters
		out := strings.TrimSpace(e.ok("run", "--name", "hn", "busybox", "hostname"))
		id := strings.TrimSpace(e.ok("ps", "-aq"))
		if out != id {
			t.Errorf("default hostname %q, want the short ID %q", out, id)
		}
	})
	t.Run("own mount table", func(t *testing.T) {
		out := e.ok("run", "--rm", "busybox", "cat", "/proc/self/mountinfo")
		allowed := map[string]bool{"/": true, "/proc": true, "/dev": true, "/dev/pts": true, "/sys": true,
			"/dev/mqueue": true, "/dev/shm": true, "/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true}
		for _, p := range append(append([]string{}, maskedForTest...), "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger") {
			allowed[p] = true
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(l)
			if len(f) < 5 || !allowed[f[4]] {
				t.Errorf("unexpected mount in the container: %q", l)
			}
		}
		first := strings.Fields(strings.Split(out, "\n")[0])
		if len(first) < 9 || first[4] != "/" || first[8] != "overlay" {
			t.Errorf("root is not an overlay mount: %q", first)
		}
		for _, want := range []string{" /proc ", " /dev ", " /dev/pts ", " /dev/shm ", " /dev/mqueue ", " /sys "} {
			if !strings.Contains(out, want) {
				t.Errorf("missing mount%s", want)
			}
		}
	})
	t.Run("only lo", func(t *testing.T) {
		out := e.ok("run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/operstate; ping -c1 -W1 127.0.0.1 >/dev/null && echo ping-ok")
		if out != "lo\nunknown\nping-ok\n" {
			t.Errorf("got %q, want only lo, up, and pingable", out)
		}
		host := e.ok("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
		var want []string
		links, _ := os.ReadDir("/sys/class/net")
		for _, l := range links {
			want = append(want, l.Name())
		}
		if strings.Join(strings.Fields(host), " ") != strings.Join(want, " ") {
			t.Errorf("--network host sees %q, the host has %q", host, want)
		}
	})
	t.Run("ipc namespace hides host shm", func(t *testing.T) {
		id, err := unix.SysvShmGet(unix.IPC_PRIVATE, 4096, unix.IPC_CREAT|0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.SysvShmCtl(id, unix.IPC_RMID, nil)
		host, _ := os.ReadFile("/proc/sysvipc/shm")
		if !strings.Contains(string(host), " "+strconv.Itoa(id)+" ") {
			t.Fatalf("host does not list its own segment %d", id)
		}
		out := e.ok("run", "--rm", "busybox", "cat", "/proc/sysvipc/shm")
		if strings.Count(out, "\n") > 1 {
			t.Errorf("container sees host shm segments:\n%s", out)
		}
	})
	t.Run("cgroup namespace and own cgroup", func(t *testing.T) {
		out := e.ok("run", "--rm", "busybox", "cat", "/proc/self/cgroup")
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !strings.HasSuffix(l, ":/") {
				t.Errorf("cgroup line %q: want the namespace root /", l)
			}
		}
	})
	t.Run("masked and read-only paths", func(t *testing.T) {
		out := e.ok("run", "--rm", "busybox", "sh", "-c",
			"cat /proc/kcore 2>/dev/null | wc -c; cat /proc/keys | wc -c; ls /sys/firmware | wc -l; echo 1 >/proc/sys/kernel/ns_last_pid 2>/dev/null || echo ro; echo x > /proc/sysrq-trigger 2>/dev/null || echo ro2")
		if out != "0\n0\n0\nro\nro2\n" {
			t.Errorf("got %q", out)
		}
	})
	t.Run("devices", func(t *testing.T) {
		out := e.ok("run", "--rm", "busybox", "sh", "-c",
			"for d in null zero full random urandom tty; do [ -c /dev/$d ] && printf ok; done; echo; head -c 4 /dev/zero | wc -c; ls -l /dev/ptmx | grep -c pts/ptmx; [ -d /dev/pts ] && echo pts")
		if out != "okokokokokok\n4\n1\npts\n" {
			t.Errorf("got %q", out)
		}
		if r := e.cfs("run", "--rm", "busybox", "ls", "/dev/mem"); r.code != 1 || r.stdout != "" {
			t.Errorf("/dev/mem visible: %s", r)
		}
	})
	t.Run("capabilities are Docker's default", func(t *testing.T) {
		out := e.ok("run", "--rm", "busybox", "grep", "CapBnd", "/proc/self/status")
		if !strings.Contains(out, "00000000a80425fb") {
			t.Errorf("bounding set %q, want Docker's default 00000000a80425fb", out)
		}
	})
}

var maskedForTest = []string{"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}

func TestUsernsRemap(t *testing.T) {
	e := newEnv(t)
	if r := e.cfs("run", "--rm", "--userns", "remap", "busybox", "true"); strings.Contains(r.stderr, "needs idmapped mounts") {
		t.Skipf("this kernel cannot idmap the layers' filesystem: %s", strings.TrimSpace(r.stderr))
	}
	out := e.ok("run", "--rm", "--userns", "remap", "busybox", "sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /etc/x && echo wrote; ls -ln /bin/busybox | awk '{print $3}'")
	f := strings.Fields(out)
	want := []string{"0", "100000", "65536", "0", "100000", "65536", "0", "wrote", "0"}
	if strings.Join(f, " ") != strings.Join(want, " ") {
		t.Errorf("got %q, want %q", f, want)
	}
	// Seen from the host, the container's root is uid 100000.
	cmd := e.command("run", "--rm", "--userns", "remap", "busybox", "sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Signal(syscall.SIGTERM)
	uid := ""
	for i := 0; i < 200 && uid == ""; i++ {
		procs, _ := filepath.Glob("/proc/[0-9]*/status")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "Name:\tsleep") {
				sl, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
				if string(sl) == "sleep\x005\x00" {
					for _, l := range strings.Split(string(b), "\n") {
						if strings.HasPrefix(l, "Uid:") {
							uid = strings.Fields(l)[1]
						}
					}
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if uid != "100000" {
		t.Errorf("container root's host uid: got %q, want 100000", uid)
	}
}

// TestInitBinary: bin/cfs as make builds it (CFS_BIN, with the lean init
// and its sum linked in, internal/initbin) starts containers' inits from the
// installed lean binary; the suite's own plain `go build` from itself.
// `cfs version` names it.
func TestInitBinary(t *testing.T) {
	e := newEnv(t)
	want := "/proc/self/exe"
	if os.Getenv("CFS_BIN") != "" {
		sum, err := os.ReadFile(filepath.Join(repoDir(), "internal", "initbin", "payload", "cfs-init.sha256"))
		if err != nil {
			t.Fatalf("CFS_BIN is make's build, whose lean init is missing: %v", err)
		}
		want = "/run/cfs/cfs-init-" + strings.TrimSpace(string(sum))[:16]
	}
	argv := strings.Split(e.ok("run", "--rm", "busybox", "cat", "/proc/1/cmdline"), "\x00")
	if argv[0] != want {
		t.Fatalf("container init is %q, want %q", argv[0], want)
	}
	if v := e.ok("version"); !strings.Contains(v, "Container init:  ") || !strings.Contains(v, want) {
		t.Errorf("cfs version does not name %s:\n%s", want, v)
	}
	if want == "/proc/self/exe" {
		return
	}
	fi, err := os.Stat(want)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("installed init %s: %v, %v; want mode 0755", want, fi, err)
	}
	// Detached containers (started by the supervisor) too.
	id := strings.TrimSpace(e.ok("run", "-d", "busybox", "sleep", "100"))
	argv = strings.Split(e.ok("exec", id, "cat", "/proc/1/cmdline"), "\x00")
	if argv[0] != want {
		t.Fatalf("detached container's init is %q, want %q", argv[0], want)
	}
	e.ok("rm", "-f", id)
}

// TestLeanFrontEnd: bin/cfs as make builds it (CFS_BIN) links none of the
// image transfer packages, and hands the commands that need them to the
// full cfs it carries: help, flags, output and exit status are the full
// program's.
func TestLeanFrontEnd(t *testing.T) {
	if os.Getenv("CFS_BIN") == "" {
		t.Skip("needs make's build (CFS_BIN): a plain go build is the full cfs alone")
	}
	bi, err := buildinfo.ReadFile(cfsBin)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range bi.Deps {
		for _, heavy := range []string{"go-containerregistry", "klauspost/compress", "ulikunitz/xz", "vbauerster/mpb"} {
			if strings.Contains(m.Path, heavy) {
				t.Errorf("bin/cfs links %s %s", m.Path, m.Version)
			}
		}
	}
	if tags := buildSetting(bi, "-tags"); tags != "cfs_lean" {
		t.Errorf("bin/cfs was built with tags %q, want cfs_lean", tags)
	}
	e := newEnv(t)
	// Help of a handed-over command comes from the full program.
	if out := e.ok("pull", "--help"); !strings.Contains(out, "--platform") {
		t.Errorf("cfs pull --help lacks the full command's flags:\n%s", out)
	}
	if out := e.ok("--help"); !strings.Contains(out, "Pull an image from a registry") {
		t.Errorf("cfs --help does not list pull:\n%s", out)
	}
	// Its exit statuses and errors, too: 125 for a usage error, 1 for a
	// failed command other than run and create.
	if r := e.cfs("pull"); r.code != 125 || !strings.Contains(r.stderr, "cfs pull --help") {
		t.Errorf("cfs pull: %s; want exit 125 and a usage hint", r)
	}
	if r := e.cfs("save", "--format", "zip", "busybox"); r.code != 1 || !strings.Contains(r.stderr, `"zip"`) {
		t.Errorf("cfs save --format zip: %s; want exit 1 naming the format", r)
	}
	// Global flags before the command reach the full program: the image
	// it loads lands in this root.
	tarball := filepath.Join(t.TempDir(), "rootfs.tar.gz")
	writeGzipTar(t, tarball, map[string]string{"hello.txt": "hi\n"})
	other := filepath.Join(e.root, "other")
	cmd := exec.Command(cfsBin, "--root", other, "import", tarball, "lean:1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cfs --root %s import: %v\n%s", other, err, out)
	}
	if out := e.ok("--root", other, "images"); !strings.Contains(out, "lean") {
		t.Errorf("the imported image is not in --root %s:\n%s", other, out)
	}
}

// buildSetting is the value of a build setting of bi ("" when unset).
func buildSetting(bi *debug.BuildInfo, key string) string {
	for _, s := range bi.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// writeGzipTar writes a gzip tarball of files (name: content) to path.
func writeGzipTar(t *testing.T, path string, files map[string]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := gzip.NewWriter(f)
	tw := tar.NewWriter(zw)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
