package integration

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestInteractiveTTY drives `cfs run -it busybox sh` through a pty, as a
// user at a terminal would.
func TestInteractiveTTY(t *testing.T) {
	e := newEnv(t)
	cmd := e.command("run", "--rm", "-it", "busybox", "sh")
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 33, Cols: 111})
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	lines := make(chan string, 256)
	go func() {
		r := bufio.NewReader(ptmx)
		var cur strings.Builder
		for {
			b, err := r.ReadByte()
			if err != nil {
				if err != io.EOF {
					lines <- cur.String()
				}
				close(lines)
				return
			}
			if b == '\n' {
				lines <- cur.String()
				cur.Reset()
				continue
			}
			cur.WriteByte(b)
		}
	}()
	expect := func(want string) {
		t.Helper()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("output ended before %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				t.Fatalf("timed out waiting for %q", want)
			}
		}
	}
	send := func(s string) {
		if _, err := ptmx.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send("echo MATH=$((6*7))\n")
	expect("MATH=42")
	send("tty; stty size\n")
	expect("/dev/pts/0")
	expect("33 111")
	// Job control: a background job and fg work only with a controlling
	// terminal and process groups.
	send("sleep 0.2 & jobs; wait; echo JOBS-DONE\n")
	expect("JOBS-DONE")
	// The window size follows the terminal.
	pty.Setsize(ptmx, &pty.Winsize{Rows: 20, Cols: 70})
	time.Sleep(100 * time.Millisecond)
	send("stty size\n")
	expect("20 70")
	// ^C interrupts the foreground job, not the shell.
	send("sleep 30\n")
	time.Sleep(300 * time.Millisecond)
	send("\x03")
	send("echo AFTER-INT\n")
	expect("AFTER-INT")
	send("exit 5\n")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("cfs run -it did not exit")
	}
	if c := cmd.ProcessState.ExitCode(); c != 5 {
		t.Fatalf("exit %d, want 5", c)
	}
}
