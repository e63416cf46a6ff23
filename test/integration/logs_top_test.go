package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cfs-org/cfs/internal/logs"
)

// fullID returns the full ID of the only container matching filter.
func (e *env) fullID(filter string) string {
	e.t.Helper()
	ids := strings.Fields(e.ok("ps", "-aq", "--no-trunc", "--filter", filter))
	if len(ids) != 1 {
		e.t.Fatalf("ps --filter %s: want one container, have %q", filter, ids)
	}
	return ids[0]
}

// writeLog appends lines to a container's log with the logs package's
// Writer, as a supervisor would: "out N" on stdout, and "err N" on stderr
// after every fifth.
func writeLog(t *testing.T, dir string, opts logs.Options, from, to int) {
	t.Helper()
	w, err := logs.NewWriter(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, errs := w.Stream(logs.Stdout), w.Stream(logs.Stderr)
	for i := from; i < to; i++ {
		fmt.Fprintf(out, "out %d\n", i)
		if i%5 == 4 {
			fmt.Fprintf(errs, "err %d\n", i)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func outLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "out %d\n", i)
	}
	return b.String()
}

func TestLogs(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "--name", "logged", "busybox", "true")
	dir := filepath.Join(e.root, "containers", e.fullID("name=^logged$"))
	os.Remove(filepath.Join(dir, logs.FileName)) // whatever run itself logged
	opts := logs.Options{MaxSize: 400, MaxFile: 100}
	writeLog(t, dir, opts, 0, 20)
	time.Sleep(20 * time.Millisecond)
	boundary := time.Now().UTC()
	time.Sleep(20 * time.Millisecond)
	writeLog(t, dir, opts, 20, 30)
	if files, _ := filepath.Glob(filepath.Join(dir, logs.FileName+".*")); len(files) < 3 {
		t.Fatalf("want rotated files, have %v", files)
	}

	r := e.cfs("logs", "logged")
	if r.code != 0 || r.stdout != outLines(0, 30) || r.stderr != "err 4\nerr 9\nerr 14\nerr 19\nerr 24\nerr 29\n" {
		t.Errorf("logs: %s", r)
	}
	if r := e.cfs("logs", "--tail", "3", "logged"); r.stdout != "out 28\nout 29\n" || r.stderr != "err 29\n" {
		t.Errorf("logs --tail 3: %s", r)
	}
	if r := e.cfs("logs", "-n", "0", "logged"); r.stdout+r.stderr != "" || r.code != 0 {
		t.Errorf("logs -n 0: %s", r)
	}
	since := boundary.Format(time.RFC3339Nano)
	if r := e.cfs("logs", "--since", since, "logged"); r.stdout != outLines(20, 30) || r.stderr != "err 24\nerr 29\n" {
		t.Errorf("logs --since %s: %s", since, r)
	}
	if r := e.cfs("logs", "--until", since, "logged"); r.stdout != outLines(0, 20) || !strings.HasSuffix(r.stderr, "err 19\n") {
		t.Errorf("logs --until %s: %s", since, r)
	}
	if r := e.cfs("logs", "--since", "1h", "--tail", "all", "logged"); r.stdout != outLines(0, 30) {
		t.Errorf("logs --since 1h: %s", r)
	}
	if r := e.cfs("logs", "--since", "30s", "--until", "2000-01-01", "logged"); r.stdout+r.stderr != "" {
		t.Errorf("logs with an empty window: %s", r)
	}
	r = e.cfs("logs", "-t", "--tail", "1", "logged")
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z err 29\n$`).MatchString(r.stderr) {
		t.Errorf("logs -t: %s", r)
	}
	// -f on a stopped container prints everything and returns.
	start := time.Now()
	if r := e.cfs("logs", "-f", "logged"); r.code != 0 || r.stdout != outLines(0, 30) {
		t.Errorf("logs -f of an exited container: %s", r)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("logs -f of an exited container took %v", d)
	}
	for _, args := range [][]string{
		{"logs", "--since", "soon", "logged"},
		{"logs", "--tail", "many", "logged"},
		{"logs", "no-such"},
		{"logs"},
	} {
		if r := e.cfs(args...); r.code == 0 || r.stderr == "" {
			t.Errorf("%v: %s", args, r)
		}
	}
	// The log is files only: it survives its writer, and is removed with
	// the container.
	e.ok("rm", "logged")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("rm left %s: %v", dir, err)
	}
}

func TestLogsFollow(t *testing.T) {
	e := newEnv(t)
	c := e.startBg("follow", "busybox", "sleep", "60")
	dir := filepath.Join(e.root, "containers", e.fullID("name=follow"))
	os.Remove(filepath.Join(dir, logs.FileName))
	writeLog(t, dir, logs.Options{}, 0, 5)

	out := &syncBuffer{}
	done := e.startLogs(out, "logs", "-f", "--tail", "2", "follow")
	waitFor(t, func() bool { return strings.Contains(out.String(), "out 4") })
	// The writer rotates while logs -f follows.
	w, err := logs.NewWriter(dir, logs.Options{MaxSize: 300, MaxFile: 3})
	if err != nil {
		t.Fatal(err)
	}
	s := w.Stream(logs.Stdout)
	for i := 5; i < 25; i++ {
		fmt.Fprintf(s, "out %d\n", i)
		l := fmt.Sprintf("out %d\n", i)
		waitFor(t, func() bool { return strings.HasSuffix(out.String(), l) })
	}
	w.Close()
	if got := out.String(); !strings.HasPrefix(got, "out 4\nerr 4\n") || !strings.HasSuffix(got, outLines(5, 25)) {
		t.Errorf("followed:\n%s", got)
	}
	select {
	case err := <-done:
		t.Fatalf("logs -f ended while the container runs: %v", err)
	default:
	}
	// The container stops: logs -f drains and exits 0.
	c.cmd.Process.Signal(syscall.SIGTERM)
	if code := c.wait(t); code != 143 {
		t.Errorf("container stopped with %d, want 143", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("logs -f after the container stopped: %v\n%s", err, out.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("logs -f did not end after the container stopped")
	}

	// ctrl-C ends following at once.
	e.startBg("follow2", "busybox", "sleep", "60")
	f := e.command("logs", "-f", "follow2")
	if err := f.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- f.Wait() }()
	time.Sleep(200 * time.Millisecond)
	f.Process.Signal(syscall.SIGINT)
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("logs -f after ctrl-C: %v", err)
		}
	case <-time.After(3 * time.Second):
		f.Process.Kill()
		<-waited
		t.Fatal("logs -f ignored ctrl-C")
	}
}

// startLogs starts a cfs command writing to out, and returns a channel
// that receives its Wait result. It is killed at the end of the test if
// still running.
func (e *env) startLogs(out *syncBuffer, args ...string) chan error {
	e.t.Helper()
	cmd := e.command(args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	waited := make(chan struct{})
	go func() { err := cmd.Wait(); done <- err; close(waited) }()
	e.t.Cleanup(func() {
		cmd.Process.Kill()
		<-waited
	})
	return done
}

func TestPsFilterFormat(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "--name", "ok1", "busybox", "true")
	if r := e.cfs("run", "--name", "bad3", "busybox", "sh", "-c", "exit 3"); r.code != 3 {
		t.Fatalf("exit 3: %s", r)
	}
	e.startBg("runner", "busybox", "sleep", "60")
	names := func(args ...string) string {
		t.Helper()
		return strings.Join(strings.Fields(e.ok(append([]string{"ps", "--format", "{{.Names}}"}, args...)...)), " ")
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "runner"},
		{[]string{"-a"}, "runner bad3 ok1"},
		{[]string{"--filter", "status=exited"}, "bad3 ok1"},
		{[]string{"-f", "status=running"}, "runner"},
		{[]string{"-a", "-f", "exited=3"}, "bad3"},
		{[]string{"-a", "-f", "exited=0"}, "ok1"},
		{[]string{"-a", "-f", "name=^ok"}, "ok1"},
		{[]string{"-f", "name=^ok"}, ""},
		{[]string{"-a", "-f", "name=r", "-f", "status=exited"}, ""},
		{[]string{"-a", "-f", "name=ok1", "-f", "name=bad3"}, "bad3 ok1"},
		{[]string{"-a", "-f", "ancestor=busybox"}, "runner bad3 ok1"},
		{[]string{"-a", "-f", "ancestor=busybox:latest", "-f", "status=running"}, "runner"},
		{[]string{"-a", "-f", "network=none"}, "runner bad3 ok1"},
		{[]string{"-f", "before=bad3"}, "ok1"},
		{[]string{"-f", "since=ok1"}, "runner bad3"},
		{[]string{"-n", "2"}, "runner bad3"},
		{[]string{"-l"}, "runner"},
	} {
		if got := names(tc.args...); got != tc.want {
			t.Errorf("ps %v: %q, want %q", tc.args, got, tc.want)
		}
	}
	id := e.fullID("name=runner")
	if got := strings.TrimSpace(e.ok("ps", "-q", "-f", "status=running")); got != id[:12] {
		t.Errorf("ps -q -f status=running: %q, want %q", got, id[:12])
	}
	// json: one object per line with Docker's keys.
	lines := strings.Split(strings.TrimSpace(e.ok("ps", "-a", "--format", "json")), "\n")
	if len(lines) != 3 {
		t.Fatalf("ps --format json: %q", lines)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("%s: %v", lines[0], err)
	}
	if m["Names"] != "runner" || m["ID"] != id[:12] || m["State"] != "running" || m["Image"] != "busybox" ||
		m["Command"] != `"sleep 60"` || !strings.HasPrefix(m["Status"], "Up ") {
		t.Errorf("json: %v", m)
	}
	out := e.ok("ps", "-a", "--format", `table {{.Names}}\t{{.State}}\t{{.Status}}`)
	if l := strings.Split(out, "\n"); !regexp.MustCompile(`^NAMES +STATE +STATUS$`).MatchString(l[0]) ||
		!regexp.MustCompile(`^bad3 +exited +Exited \(3\) `).MatchString(l[2]) {
		t.Errorf("table format:\n%s", out)
	}
	out = e.ok("ps", "-s")
	if l := strings.Split(out, "\n"); !strings.HasSuffix(l[0], "SIZE") || !strings.Contains(l[1], "(virtual ") {
		t.Errorf("ps -s:\n%s", out)
	}
	for _, args := range [][]string{
		{"ps", "--filter", "color=red"},
		{"ps", "--filter", "status=sleeping"},
		{"ps", "--filter", "before=no-such"},
		{"ps", "--format", "{{.Nope"},
	} {
		if r := e.cfs(args...); r.code == 0 || r.stderr == "" {
			t.Errorf("%v: %s", args, r)
		}
	}
}

func TestTopAndRename(t *testing.T) {
	e := newEnv(t)
	c := e.startBg("topper", "busybox", "sh", "-c", "sleep 300 & sleep 301; wait")
	waitFor(t, func() bool { return strings.Contains(e.ok("top", "topper"), "sleep 301") })
	out := e.ok("top", "topper")
	l := strings.Split(strings.TrimSpace(out), "\n")
	if !regexp.MustCompile(`^UID +PID +PPID +C +STIME +TTY +TIME +CMD$`).MatchString(l[0]) {
		t.Errorf("top header: %q", l[0])
	}
	for _, want := range []string{"sh -c sleep 300 & sleep 301; wait", "sleep 300", "sleep 301"} {
		if !strings.Contains(out, want) {
			t.Errorf("top lacks %q:\n%s", want, out)
		}
	}
	for _, row := range l[1:] {
		f := strings.Fields(row)
		if len(f) < 8 || f[0] != "root" || !regexp.MustCompile(`^\d\d:\d\d:\d\d$`).MatchString(f[6]) {
			t.Errorf("top row %q", row)
		}
	}
	// With ps options, the host's ps shows the container's processes only.
	out = e.ok("top", "topper", "-o", "pid,comm")
	if l := strings.Split(strings.TrimSpace(out), "\n"); !regexp.MustCompile(`^ *PID +COMMAND$`).MatchString(l[0]) ||
		!strings.Contains(out, "sleep") || strings.Contains(out, "systemd") || len(l) > 6 {
		t.Errorf("top -o pid,comm:\n%s", out)
	}
	if out := e.ok("top", "topper", "aux"); !strings.Contains(out, "USER") || !strings.Contains(out, "sleep 301") {
		t.Errorf("top aux:\n%s", out)
	}

	// A running container can be renamed; the new name works at once and
	// the old one is free.
	e.ok("rename", "topper", "renamed")
	if got := strings.TrimSpace(e.ok("ps", "--format", "{{.Names}}")); got != "renamed" {
		t.Errorf("ps after rename: %q", got)
	}
	if !strings.Contains(e.ok("inspect", "renamed"), `"Name": "/renamed"`) {
		t.Error("inspect by the new name")
	}
	if r := e.cfs("inspect", "topper"); r.code == 0 || !strings.Contains(r.stderr, "no such container") {
		t.Errorf("inspect by the old name: %s", r)
	}
	e.ok("run", "--name", "topper", "busybox", "true")
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"rename", "renamed", "topper"}, "topper"}, // in use
		{[]string{"rename", "renamed", "renamed"}, "already named"},
		{[]string{"rename", "renamed", "bad/name"}, "invalid container name"},
		{[]string{"rename", "no-such", "x"}, "no such container"},
		{[]string{"rename", "renamed"}, "2 arg"},
		{[]string{"top", "topper"}, "is not running"},
		{[]string{"top", "no-such"}, "no such container"},
	} {
		if r := e.cfs(tc.args...); r.code == 0 || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%v: %s", tc.args, r)
		}
	}
	if r := e.cfs("inspect", "renamed"); r.code != 0 || !strings.Contains(r.stdout, `"Running": true`) {
		t.Errorf("a failed rename changed the container: %s", r)
	}

	// Removing by the new name; the container stops.
	e.ok("rm", "-f", "renamed")
	c.wait(t)
	e.ok("rm", "topper")
	if out := e.ok("ps", "-aq"); out != "" {
		t.Errorf("left: %q", out)
	}
}
