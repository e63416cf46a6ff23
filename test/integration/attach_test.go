package integration

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// ptySession is a cfs command on a pty, driven as a user at a terminal.
type ptySession struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	seen int // output before this was matched by expect
	done chan struct{}
}

func (e *env) startPty(args ...string) *ptySession {
	e.t.Helper()
	cmd := e.command(args...)
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	s := &ptySession{t: e.t, cmd: cmd, ptmx: ptmx, done: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			s.mu.Lock()
			s.out.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			cmd.Process.Kill() // ours, by pid
			<-s.done
		}
		ptmx.Close()
	})
	return s
}

// expect waits for want in the output that came after the last match.
func (s *ptySession) expect(want string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		rest := s.out.String()[s.seen:]
		if i := strings.Index(rest, want); i >= 0 {
			s.seen += i + len(want)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.t.Fatalf("timed out waiting for %q; output after the last match: %q", want, s.out.String()[s.seen:])
}

func (s *ptySession) send(str string) {
	s.t.Helper()
	if _, err := s.ptmx.Write([]byte(str)); err != nil {
		s.t.Fatal(err)
	}
}

// wait returns the command's exit code.
func (s *ptySession) wait() int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		s.t.Fatalf("%v did not exit", s.cmd.Args)
	}
	return s.cmd.ProcessState.ExitCode()
}

func (e *env) status(name string) string {
	return strings.TrimSpace(e.ok("inspect", "-f", "{{.State.Status}}", name))
}

// TestAttachTTYDetach: `run -dit` a shell, attach, type, detach with
// ctrl-p ctrl-q (the container keeps running), attach again, and exit the
// shell: attach exits with its status.
func TestAttachTTYDetach(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-dit", "--name", "sh1", "busybox", "sh")
	a := e.startPty("attach", "sh1")
	a.send("echo MATH=$((6*7))\n")
	a.expect("MATH=42")
	a.send("stty size\n")
	a.expect("30 100") // the window size reached the container's pty
	pty.Setsize(a.ptmx, &pty.Winsize{Rows: 20, Cols: 70})
	time.Sleep(100 * time.Millisecond) // SIGWINCH to attach, a resize frame to the supervisor
	a.send("stty size\n")
	a.expect("20 70")
	a.send("\x10\x11")
	a.expect("read escape sequence")
	if c := a.wait(); c != 1 {
		t.Errorf("attach after detaching exited %d, want 1 (Docker's)", c)
	}
	if st := e.status("sh1"); st != "running" {
		t.Fatalf("after detaching the container is %s", st)
	}
	b := e.startPty("attach", "sh1")
	b.send("echo AGAIN-$((1+1))\n")
	b.expect("AGAIN-2")
	b.send("exit 9\n")
	if c := b.wait(); c != 9 {
		t.Errorf("attach exited %d when the shell exited 9", c)
	}
	if st := e.status("sh1"); st != "exited" {
		t.Errorf("after exit the container is %s", st)
	}
	// What was typed and shown is in the log too.
	if out := e.ok("logs", "sh1"); !strings.Contains(out, "MATH=42") || !strings.Contains(out, "AGAIN-2") {
		t.Errorf("logs: %q", out)
	}
}

func TestAttachCustomDetachKeys(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-dit", "--name", "sh2", "busybox", "sh")
	if r := e.cfs("attach", "--detach-keys", "ctrl-1", "sh2"); r.code != 1 || !strings.Contains(r.stderr, "Invalid detach keys") {
		t.Errorf("attach with bad detach keys: %s", r)
	}
	a := e.startPty("attach", "--detach-keys", "ctrl-a,x", "sh2")
	// The default keys are now just keys (ctrl-p: history, ctrl-q: XON).
	a.send("\x10\x11\x15echo STILL-$((2+3))\n")
	a.expect("STILL-5")
	a.send("\x01x")
	a.expect("read escape sequence")
	if c := a.wait(); c != 1 {
		t.Errorf("attach exited %d after detaching, want 1", c)
	}
	if st := e.status("sh2"); st != "running" {
		t.Errorf("after detaching the container is %s", st)
	}
}

// TestAttachOutputOnly: a container without -i takes no input from an
// attach; stdout and stderr stay apart; attach exits with the status.
func TestAttachOutputOnly(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-d", "--name", "o1", "busybox", "sh", "-c",
		"sleep 1; if read x; then echo READ:$x; else echo NO-INPUT; fi; echo to-err >&2; exit 4")
	r := e.cfsIn("typed\n", "attach", "o1")
	if r.code != 4 || r.stdout != "NO-INPUT\n" || r.stderr != "to-err\n" {
		t.Errorf("attach: %s", r)
	}
	// With -i, --no-stdin keeps the input out; another attach brings it.
	e.ok("run", "-di", "--name", "o2", "busybox", "sh", "-c", "read x; echo READ:$x; exit 5")
	first := e.command("attach", "--no-stdin", "o2")
	first.Stdin = strings.NewReader("from-no-stdin\n")
	var out1 bytes.Buffer
	first.Stdout = &out1
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	r = e.cfsIn("second\n", "attach", "o2")
	if r.code != 5 || r.stdout != "READ:second\n" {
		t.Errorf("attach with stdin: %s", r)
	}
	first.Wait()
	if c := first.ProcessState.ExitCode(); c != 5 || out1.String() != "READ:second\n" {
		t.Errorf("attach --no-stdin: exit %d, stdout %q", c, out1.String())
	}
}

// TestAttachFanOut: two attaches see the same output and both get the
// exit status.
func TestAttachFanOut(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-d", "--name", "fan", "busybox", "sh", "-c",
		"while [ ! -e /stop ]; do echo tick; sleep 0.1; done; echo END; exit 4")
	type client struct {
		cmd *exec.Cmd
		out *syncBuffer
	}
	var cs []client
	for i := 0; i < 2; i++ {
		c := client{cmd: e.command("attach", "--no-stdin", "fan"), out: &syncBuffer{}}
		c.cmd.Stdout = c.out
		if err := c.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if c.cmd.ProcessState == nil {
				c.cmd.Process.Kill()
				c.cmd.Wait()
			}
		})
		cs = append(cs, c)
	}
	waitFor(t, func() bool {
		return strings.Contains(cs[0].out.String(), "tick") && strings.Contains(cs[1].out.String(), "tick")
	})
	e.ok("exec", "fan", "touch", "/stop")
	for i, c := range cs {
		c.cmd.Wait()
		if code := c.cmd.ProcessState.ExitCode(); code != 4 || !strings.HasSuffix(c.out.String(), "tick\nEND\n") {
			t.Errorf("attach %d: exit %d, output %q", i, code, c.out.String())
		}
	}
}

// TestAttachSlowClient: a client that does not read never holds the
// container up; it misses output (and is told so), the log has it all.
func TestAttachSlowClient(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-d", "--name", "fast", "busybox", "sh", "-c",
		"sleep 1; head -c 4000000 /dev/zero | tr '\\0' x; echo; echo DONE")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := e.command("attach", "fast")
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = pw, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	// Nobody reads pr: the container must finish anyway.
	waitFor(t, func() bool { return e.status("fast") == "exited" })
	n, _ := io.Copy(io.Discard, pr)
	cmd.Wait()
	if c := cmd.ProcessState.ExitCode(); c != 0 {
		t.Errorf("attach exited %d", c)
	}
	if n >= 4000000 || !strings.Contains(stderr.String(), "bytes of output dropped") {
		t.Errorf("the slow client got %d bytes, stderr %q: want some dropped and a notice", n, stderr.String())
	}
	if out := e.ok("logs", "fast"); strings.Count(out, "x") != 4000000 || !strings.HasSuffix(out, "DONE\n") {
		t.Errorf("logs hold %d x's, want all 4000000", strings.Count(out, "x"))
	}
}

func TestAttachErrors(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "--name", "made", "busybox", "true")
	if r := e.cfs("attach", "made"); r.code != 1 || !strings.Contains(r.stderr, "You cannot attach to a stopped container, start it first") {
		t.Errorf("attach to a created container: %s", r)
	}
	if r := e.cfs("attach", "nope"); r.code != 1 || !strings.Contains(r.stderr, "no such container") {
		t.Errorf("attach to a missing container: %s", r)
	}
	if r := e.cfs("attach"); r.code != 125 {
		t.Errorf("attach without a container: %s", r)
	}
	// A tty container needs a terminal for its input (Docker's check).
	e.ok("run", "-dit", "--name", "t1", "busybox", "sh")
	if r := e.cfsIn("x\n", "attach", "t1"); r.code != 1 || !strings.Contains(r.stderr, "the input device is not a TTY") {
		t.Errorf("attach with a pipe to a tty container: %s", r)
	}
	// A foreground `cfs run` is nobody else's to attach to.
	fg := e.command("run", "--name", "fg", "busybox", "sleep", "30")
	if err := fg.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		e.cfs("rm", "-f", "fg")
		fg.Wait()
	}()
	waitFor(t, func() bool { return e.cfs("inspect", "-f", "{{.State.Status}}", "fg").stdout == "running\n" })
	if r := e.cfs("attach", "fg"); r.code != 1 || !strings.Contains(r.stderr, "cannot be attached") {
		t.Errorf("attach to a foreground container: %s", r)
	}
}

// TestStartAttachInteractive: `start -ai` as Docker's: input piped in
// (its end closes the container's stdin), or a terminal.
func TestStartAttachInteractive(t *testing.T) {
	e := newEnv(t)
	e.ok("create", "-i", "--name", "ci", "busybox", "sh", "-c", "cat; echo cat-done; exit 6")
	r := e.cfsIn("hello\nworld\n", "start", "-ai", "ci")
	if r.code != 6 || r.stdout != "hello\nworld\ncat-done\n" {
		t.Errorf("start -ai with piped input: %s", r)
	}
	e.ok("create", "-it", "--name", "cit", "busybox", "sh")
	s := e.startPty("start", "-ai", "cit")
	s.send("echo IN-START-$((3*3))\n")
	s.expect("IN-START-9")
	s.send("\x10\x11")
	if c := s.wait(); c != 0 {
		t.Errorf("start -ai exited %d after detaching, want 0 (Docker's)", c)
	}
	if st := e.status("cit"); st != "running" {
		t.Fatalf("after detaching the container is %s", st)
	}
	s = e.startPty("start", "-ai", "cit") // running: attaches
	s.send("exit 2\n")
	if c := s.wait(); c != 2 {
		t.Errorf("start -ai exited %d, want the shell's 2", c)
	}
}

// TestDetachedInteractiveStdin: -d -i keeps stdin open for later attaches;
// without -i it is /dev/null.
func TestDetachedInteractiveStdin(t *testing.T) {
	e := newEnv(t)
	e.ok("run", "-di", "--name", "open", "busybox", "cat")
	e.ok("run", "-d", "--name", "null", "busybox", "cat")
	waitFor(t, func() bool { return e.status("null") == "exited" })
	time.Sleep(200 * time.Millisecond)
	if st := e.status("open"); st != "running" {
		t.Errorf("run -di cat: %s, want running (stdin open)", st)
	}
	e.ok("stop", "-t", "1", "open")
}
