package supervisor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ServeArg is argv[1] of a cfs process that is a supervisor.
const ServeArg = "__cfs_supervisor"

// Error is a failure the supervisor reported, with its exit code.
type Error struct {
	Msg  string
	Code int
}

func (e *Error) Error() string { return e.Msg }

// ExitCode implements ExitCoder.
func (e *Error) ExitCode() int { return e.Code }

// Start asks root's supervisor to start container id, starting the
// supervisor first if none runs, and returns the container's init pid.
func Start(root, id string) (int, error) {
	resp, err := call(root, request{Op: "start", ID: id})
	if err != nil {
		return 0, err
	}
	return resp.Pid, nil
}

// Run asks root's supervisor to create and start a container from run
// options (JSON), and returns its ID.
func Run(root string, opts []byte) (string, error) {
	resp, err := call(root, request{Op: "run", Opts: opts})
	if err != nil {
		return "", err
	}
	return resp.ID, nil
}

// Adopt hands a detached exec'd process (its connection to the container's
// init) to root's supervisor, which keeps it alive until the process exits.
func Adopt(root, id string, pid int, conn *os.File) error {
	_, err := call(root, request{Op: "adopt", ID: id, Pid: pid}, int(conn.Fd()))
	return err
}

func call(root string, req request, fds ...int) (*response, error) {
	c, _, resp, err := exchange(root, req, true, 512, fds...)
	if err != nil {
		return nil, err
	}
	c.Close()
	return resp, nil
}

// exchange sends req (with fds) to root's supervisor, started first when
// spawn is set (else a missing one is ErrNotAttachable), and reads its
// one-line response through a reader of bufSize bytes; the connection and
// the reader stay open for what follows the response (attach frames). A
// request that was sent is never retried: the supervisor may have acted.
func exchange(root string, req request, spawn bool, bufSize int, fds ...int) (net.Conn, *bufio.Reader, *response, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, nil, nil, err
	}
	b = append(b, '\n')
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		var c net.Conn
		if spawn {
			c, err = dial(root)
		} else {
			sock, _, _ := paths(root)
			if c, err = net.Dial("unix", sock); err != nil {
				return nil, nil, nil, ErrNotAttachable
			}
		}
		if err != nil {
			lastErr = err
			continue
		}
		if _, _, err := c.(*net.UnixConn).WriteMsgUnix(b, oob, nil); err != nil {
			c.Close()
			lastErr = err
			continue
		}
		r := bufio.NewReaderSize(c, bufSize)
		line, err := r.ReadBytes('\n')
		var resp response
		if err == nil {
			err = json.Unmarshal(line, &resp)
		}
		if err != nil {
			// The supervisor died while it worked on the request: what
			// it did is unknown (a container may exist), so no retry.
			c.Close()
			return nil, nil, nil, fmt.Errorf("supervisor: no answer: %w", err)
		}
		if !resp.OK {
			c.Close()
			if resp.Error == ErrNotAttachable.Error() {
				return nil, nil, nil, ErrNotAttachable
			}
			return nil, nil, nil, &Error{Msg: resp.Error, Code: resp.Code}
		}
		return c, r, &resp, nil
	}
	return nil, nil, nil, fmt.Errorf("supervisor: %w", lastErr)
}

// dial connects to root's supervisor, starting one when none answers.
func dial(root string) (net.Conn, error) {
	sock, lock, _ := paths(root)
	if c, err := net.Dial("unix", sock); err == nil {
		return c, nil
	}
	if err := os.MkdirAll(RunDir, 0o700); err != nil {
		return nil, err
	}
	if err := spawn(root); err != nil {
		return nil, err
	}
	// Wait for the socket; a supervisor that lost the race for the lock
	// to another one exits at once, and that other one answers.
	deadline := time.Now().Add(5 * time.Second)
	for delay := 200 * time.Microsecond; time.Now().Before(deadline); delay = min(delay*2, 20*time.Millisecond) {
		if c, err := net.Dial("unix", sock); err == nil {
			return c, nil
		}
		time.Sleep(delay)
	}
	return nil, fmt.Errorf("supervisor for %s did not start (see %s.log)", root, lock)
}

// spawn starts a supervisor for root in its own session, detached from our
// terminal; its messages go to a log file beside its lock.
func spawn(root string) error {
	_, lock, _ := paths(root)
	logf, err := os.OpenFile(lock+".log", os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command("/proc/self/exe", ServeArg, root)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start supervisor: %w", err)
	}
	// Not waited for: it outlives us and is re-parented to init.
	return cmd.Process.Release()
}

// Pid returns the pid of root's running supervisor, or 0.
func Pid(root string) int {
	_, lock, pidfile := paths(root)
	f, err := os.Open(lock)
	if err != nil {
		return 0
	}
	defer f.Close()
	if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
		unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return 0 // nobody holds it
	}
	var pid int
	if b, err := os.ReadFile(pidfile); err == nil {
		fmt.Sscanf(string(b), "%d", &pid)
	}
	return pid
}

// AttachConn is a client's end of an attach stream (attach.go).
type AttachConn struct {
	// Pid is the container's init pid when the request started it.
	Pid int
	c   net.Conn
	r   *bufio.Reader
	buf []byte
	wmu sync.Mutex
}

// Attach attaches to container id, which root's supervisor runs: stdin
// says whether the client's input goes to the container (which must have
// been created with -i), stdinOnce whether the end of that input closes
// the container's stdin. It starts no supervisor: without one, nothing is
// attachable (ErrNotAttachable).
func Attach(root, id string, stdin, stdinOnce bool) (*AttachConn, error) {
	return openStream(root, request{Op: "attach", ID: id, Stdin: stdin, StdinOnce: stdinOnce}, false)
}

// StartAttached starts container id (as Start) with the client attached
// from before its program runs, so that no output is missed.
func StartAttached(root, id string, stdin, stdinOnce bool) (*AttachConn, error) {
	return openStream(root, request{Op: "start", ID: id, Attach: true, Stdin: stdin, StdinOnce: stdinOnce}, true)
}

func openStream(root string, req request, spawn bool) (*AttachConn, error) {
	// The response is one line; frames follow it in the same buffer.
	c, r, resp, err := exchange(root, req, spawn, 32<<10)
	if err != nil {
		return nil, err
	}
	return &AttachConn{Pid: resp.Pid, c: c, r: r}, nil
}

// Next returns the next frame from the supervisor: output, a count of
// dropped output, or the exit status. The payload is valid until the
// next call.
func (a *AttachConn) Next() (typ byte, payload []byte, err error) {
	typ, payload, a.buf, err = ReadFrame(a.r, a.buf)
	return typ, payload, err
}

// Stdin sends input to the container.
func (a *AttachConn) Stdin(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), 32<<10)
		if err := a.send(FrameStdin, p[:n]); err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// CloseStdin says the input ended.
func (a *AttachConn) CloseStdin() error { return a.send(FrameStdin, nil) }

// Resize sets the container's terminal size.
func (a *AttachConn) Resize(rows, cols uint16) error {
	var b [4]byte
	binary.BigEndian.PutUint16(b[0:], rows)
	binary.BigEndian.PutUint16(b[2:], cols)
	return a.send(FrameResize, b[:])
}

// Close detaches.
func (a *AttachConn) Close() error { return a.c.Close() }

func (a *AttachConn) send(typ byte, p []byte) error {
	a.wmu.Lock()
	defer a.wmu.Unlock()
	_, err := a.c.Write(AppendFrame(make([]byte, 0, frameHeader+len(p)), typ, p))
	return err
}

// RemoveStale removes the files a supervisor of root left in RunDir when
// it was killed (its own exit removes them). Nothing may start a
// supervisor for root meanwhile: tests call it once a root is done.
func RemoveStale(root string) {
	if Pid(root) != 0 {
		return
	}
	removeFiles(root)
}

// RemoveOwnFiles removes the files of root's supervisor, for the
// supervisor itself when a signal ends it outside Serve.
func RemoveOwnFiles(root string) { removeFiles(root) }

func removeFiles(root string) {
	sock, lock, pidfile := paths(root)
	for _, p := range []string{sock, pidfile, lock, lock + ".log"} {
		os.Remove(p)
	}
}
