package integration

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunOptions(t *testing.T) {
	e := newEnv(t)
	host := t.TempDir()
	os.WriteFile(filepath.Join(host, "in.txt"), []byte("from host\n"), 0o644)
	envFile := filepath.Join(t.TempDir(), "env")
	os.WriteFile(envFile, []byte("# comment\n\nFROM_FILE=yes\nPASSED\n"), 0o644)
	t.Setenv("PASSED", "through")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"env", []string{"-e", "A=1", "-e", "B=two words", "busybox", "sh", "-c", `echo "$A|$B|$PATH"`}, "1|two words|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"},
		{"env file and pass-through", []string{"--env-file", envFile, "-e", "PASSED", "busybox", "sh", "-c", `echo "$FROM_FILE|$PASSED"`}, "yes|through\n"},
		{"workdir", []string{"-w", "/tmp/new/dir", "busybox", "pwd"}, "/tmp/new/dir\n"},
		{"user by uid", []string{"-u", "1000", "busybox", "id"}, "uid=1000(user) gid=1000(user) groups=1000(user)\n"},
		{"user by name", []string{"-u", "nobody", "busybox", "id", "-u"}, "65534\n"},
		{"user:group", []string{"-u", "1000:0", "busybox", "id", "-g"}, "0\n"},
		{"user without passwd entry", []string{"-u", "4242", "busybox", "id", "-u"}, "4242\n"},
		{"volume", []string{"-v", host + ":/mnt", "busybox", "sh", "-c", "cat /mnt/in.txt; echo out > /mnt/out.txt"}, "from host\n"},
		{"read-only volume", []string{"-v", host + ":/mnt:ro", "busybox", "sh", "-c", "touch /mnt/x 2>/dev/null || echo denied"}, "denied\n"},
		{"read-only root", []string{"--read-only", "busybox", "sh", "-c", "touch /x 2>/dev/null || echo denied; touch /dev/shm/ok && echo shm"}, "denied\nshm\n"},
		{"tmpfs", []string{"--read-only", "--tmpfs", "/run:size=1m", "busybox", "sh", "-c", "touch /run/x && grep ' /run ' /proc/mounts | cut -d' ' -f3"}, "tmpfs\n"},
		{"entrypoint", []string{"--entrypoint", "echo", "busybox", "a", "b"}, "a b\n"},
		{"hosts file", []string{"--hostname", "web", "busybox", "grep", "-c", "web", "/etc/hosts"}, "1\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.cfs(append([]string{"run", "--rm"}, tc.args...)...)
			if r.code != 0 || r.stdout != tc.want {
				t.Fatalf("want %q, got %s", tc.want, r)
			}
		})
	}
	if b, err := os.ReadFile(filepath.Join(host, "out.txt")); err != nil || string(b) != "out\n" {
		t.Errorf("write through the volume: %q, %v", b, err)
	}
}

func TestInteractiveStdin(t *testing.T) {
	e := newEnv(t)
	r := e.cfsIn("hello stdin\n", "run", "--rm", "-i", "busybox", "cat")
	if r.code != 0 || r.stdout != "hello stdin\n" {
		t.Fatalf("-i: %s", r)
	}
	// Without -i the container's stdin is empty.
	r = e.cfsIn("ignored\n", "run", "--rm", "busybox", "cat")
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("without -i: %s", r)
	}
}

func TestBadInputs(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		args []string
		err  string
	}{
		{"unknown image", []string{"no-such-image"}, "no-such-image"},
		{"unknown flag", []string{"--bogus", "busybox"}, "--bogus"},
		{"bad network", []string{"--network", "wat", "busybox", "true"}, "--network"},
		{"bad userns", []string{"--userns", "wat", "busybox", "true"}, "--userns"},
		{"bad hostname", []string{"--hostname", "bad_name!", "busybox", "true"}, "--hostname"},
		{"relative volume", []string{"-v", "rel:/mnt", "busybox", "true"}, "--volume"},
		{"volume onto /", []string{"-v", "/tmp:/", "busybox", "true"}, "--volume"},
		{"bad volume option", []string{"-v", "/tmp:/mnt:xx", "busybox", "true"}, "--volume"},
		{"relative workdir", []string{"-w", "rel", "busybox", "true"}, "--workdir"},
		{"missing env file", []string{"--env-file", "/nonexistent/env", "busybox", "true"}, "--env-file"},
		{"bad env name", []string{"-e", "=x", "busybox", "true"}, "--env"},
		{"unknown user", []string{"-u", "nosuchuser", "busybox", "true"}, "nosuchuser"},
		{"unknown group", []string{"-u", "0:nosuchgroup", "busybox", "true"}, "nosuchgroup"},
		{"bad tmpfs", []string{"--tmpfs", "relative", "busybox", "true"}, "--tmpfs"},
		{"bad tmpfs option", []string{"--tmpfs", "/x:bogus=1", "busybox", "true"}, "--tmpfs"},
		{"bad name", []string{"--name", "no/slash", "busybox", "true"}, "no/slash"},
		{"no image", []string{}, "requires at least 1 arg"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.cfs(append([]string{"run", "--rm"}, tc.args...)...)
			if r.code != 125 || !strings.Contains(r.stderr, tc.err) {
				t.Fatalf("want exit 125 naming %q, got %s", tc.err, r)
			}
			if lines := strings.Count(strings.TrimSpace(r.stderr), "\n"); lines > 1 {
				t.Errorf("error is not one clear line: %q", r.stderr)
			}
		})
	}
	// Nothing was created: no record, no container directory.
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("failed runs left records: %q", out)
	}
	ents, _ := os.ReadDir(filepath.Join(e.root, "containers"))
	for _, d := range ents {
		if len(d.Name()) == 64 {
			t.Errorf("failed run left container directory %s", d.Name())
		}
	}
	// A name in use is refused, and the first container is untouched.
	e.ok("run", "--name", "taken", "busybox", "true")
	r := e.cfs("run", "--name", "taken", "busybox", "true")
	if r.code != 125 || !strings.Contains(r.stderr, "already in use") {
		t.Errorf("duplicate name: %s", r)
	}
	if n := len(strings.Fields(e.ok("ps", "-aq"))); n != 1 {
		t.Errorf("%d containers after a refused duplicate, want 1", n)
	}
}

func TestSignalsAndReaping(t *testing.T) {
	e := newEnv(t)
	t.Run("SIGTERM to cfs run reaches the program", func(t *testing.T) {
		cmd := e.command("run", "--rm", "busybox", "sh", "-c", "trap 'echo got TERM; exit 7' TERM; echo ready; while true; do sleep 0.05; done")
		out := &strings.Builder{}
		cmd.Stdout = out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), "ready") && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		if cmd.ProcessState.ExitCode() != 7 || !strings.Contains(out.String(), "got TERM") {
			t.Fatalf("exit %d (%v), output %q", cmd.ProcessState.ExitCode(), err, out.String())
		}
	})
	t.Run("a program without handlers dies of SIGTERM", func(t *testing.T) {
		cmd := e.command("run", "--rm", "busybox", "sleep", "30")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if c := cmd.ProcessState.ExitCode(); c != 143 {
			t.Fatalf("exit %d, want 143", c)
		}
	})
	t.Run("orphans are reaped", func(t *testing.T) {
		// Orphaned children are re-parented to init, which reaps them: no
		// zombie stays in the process table.
		out := e.ok("run", "--rm", "busybox", "sh", "-c",
			"(sleep 0.1 &); (true &); sleep 0.5; ps -o stat,comm | grep -c '^Z' || true")
		if strings.TrimSpace(out) != "0" {
			t.Fatalf("zombies left: %q", out)
		}
	})
}

func TestRecords(t *testing.T) {
	e := newEnv(t)
	if r := e.cfs("run", "--name", "first", "busybox", "sh", "-c", "exit 4"); r.code != 4 {
		t.Fatalf("exit 4: %s", r)
	}
	out := e.ok("ps", "-a")
	if !strings.Contains(out, "first") || !strings.Contains(out, "Exited (4)") {
		t.Errorf("ps -a:\n%s", out)
	}
	if out := e.ok("ps"); strings.Contains(out, "first") {
		t.Errorf("ps without -a lists an exited container:\n%s", out)
	}
	insp := e.ok("inspect", "first")
	for _, want := range []string{`"Name": "/first"`, `"ExitCode": 4`, `"Status": "exited"`, `"Path": "sh"`} {
		if !strings.Contains(insp, want) {
			t.Errorf("inspect lacks %s:\n%s", want, insp)
		}
	}
	// A running container: rm refuses without -f, and -f kills it.
	cmd := e.command("run", "--name", "sleeper", "busybox", "sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	waitFor(t, func() bool { return strings.Contains(e.ok("ps"), "sleeper") })
	if r := e.cfs("rm", "sleeper"); r.code != 1 || !strings.Contains(r.stderr, "running") {
		t.Errorf("rm of a running container: %s", r)
	}
	id := strings.TrimSpace(e.ok("ps", "-q"))
	e.ok("rm", "-f", id[:5])
	if out := e.ok("ps", "-aq"); strings.Contains(out, id) {
		t.Errorf("rm -f left %s", id)
	}
	if r := e.cfs("rm", "no-such"); r.code != 1 || !strings.Contains(r.stderr, "no such container") {
		t.Errorf("rm of a missing container: %s", r)
	}
	e.ok("rm", "first")
	if _, err := os.Stat(filepath.Join(e.root, "containers", id)); !os.IsNotExist(err) {
		t.Errorf("container directory survived rm: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestVolatileLayerOnlyForRm: a --rm container's writable layer is mounted
// with overlayfs's volatile option (no syncs: it is thrown away), a kept
// container's is not (it must survive a host crash).
func TestVolatileLayerOnlyForRm(t *testing.T) {
	e := newEnv(t)
	opts := "grep ' / overlay ' /proc/mounts | grep -c volatile || true"
	if got := e.ok("run", "--rm", "busybox", "sh", "-c", opts); got != "1\n" {
		t.Errorf("--rm: overlay options say volatile %q times, want 1", got)
	}
	if got := e.ok("run", "--name", "kept", "busybox", "sh", "-c", opts); got != "0\n" {
		t.Errorf("kept container: overlay options say volatile %q times, want 0", got)
	}
	e.ok("rm", "kept")
}
