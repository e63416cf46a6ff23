package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Exec: running another process in a running container, for the OCI
// runtime's `exec` and the engine's. The container's init forks the
// process (see control_linux.go for why); this is the requester's side.

// ExecOptions say how to run an exec'd process.
type ExecOptions struct {
	// Control is the path of the container's control socket.
	Control string
	// Stdio of the process; nil means /dev/null. Ignored with Tty.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles become the process's descriptors 3, 4, ...
	ExtraFiles []*os.File
	// Tty gives the process a new pty of the container's devpts as its
	// controlling terminal; ExecProcess.Pty returns the master.
	Tty bool
}

// ExecProcess is a process started by Exec. Its lifetime is bound to the
// ExecProcess's connection to init: if this process (or the waiter it was
// handed to) exits, init kills the exec'd process.
type ExecProcess struct {
	// Pid is the process's pid in our PID namespace, 0 when it was over
	// before its pid could be read.
	Pid  int
	pty  *os.File
	conn *syncConn
	done bool
	code int
}

// ErrNotRunning: the container has no init to serve the request.
var ErrNotRunning = errors.New("container is not running")

// Exec starts proc in the container whose init serves o.Control.
func Exec(proc *specs.Process, o ExecOptions) (*ExecProcess, error) {
	fd, err := dialControl(o.Control)
	if err != nil {
		return nil, err
	}
	conn := &syncConn{fd: fd}
	pj, err := json.Marshal(proc)
	if err != nil {
		conn.close()
		return nil, fmt.Errorf("encode process: %w", err)
	}
	req := controlMsg{Type: ctlExec, Process: pj, Tty: o.Tty, ExtraFDs: len(o.ExtraFiles)}
	var fds []int
	var opened []*os.File
	defer func() {
		for _, f := range opened {
			f.Close()
		}
	}()
	if !o.Tty {
		req.Stdio = true
		for _, f := range []*os.File{o.Stdin, o.Stdout, o.Stderr} {
			if f == nil {
				n, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
				if err != nil {
					conn.close()
					return nil, err
				}
				opened = append(opened, n)
				f = n
			}
			fds = append(fds, int(f.Fd()))
		}
	}
	for _, f := range o.ExtraFiles {
		fds = append(fds, int(f.Fd()))
	}
	if err := conn.send(req, fds...); err != nil {
		conn.close()
		return nil, fmt.Errorf("send exec request: %w", err)
	}
	var m message
	got, err := conn.recvRaw(&m)
	if err != nil {
		conn.close()
		closeFDs(got)
		if errors.Is(err, errPeerClosed) {
			return nil, ErrNotRunning
		}
		return nil, fmt.Errorf("exec: reading init's answer: %w", err)
	}
	switch m.Type {
	case msgStarted:
	case msgError:
		conn.close()
		closeFDs(got)
		return nil, &InitError{Msg: m.Error, Code: m.Code}
	default:
		conn.close()
		closeFDs(got)
		return nil, fmt.Errorf("exec: unexpected answer %q", m.Type)
	}
	p := &ExecProcess{conn: conn}
	if len(got) > 0 {
		// The pidfd tells the pid in our namespace (init knows only its
		// own, m.Pid, which may name another process here); its fdinfo
		// says -1 once init reaped the process: Pid stays 0 (unknown) and
		// Wait still reports the status.
		if pid, err := pidfdPid(got[0]); err == nil && pid > 0 {
			p.Pid = pid
		}
		unix.Close(got[0])
	}
	if o.Tty {
		if len(got) < 2 {
			conn.close()
			return nil, errors.New("exec: init sent no pty master")
		}
		p.pty = os.NewFile(uintptr(got[1]), "/dev/ptmx")
	}
	return p, nil
}

// ResumeExec takes over an exec'd process from the connection f (handed
// down by Conn) in another process: a detached exec's waiter.
func ResumeExec(f *os.File, pid int) *ExecProcess {
	fd, _ := unix.Dup(int(f.Fd()))
	unix.CloseOnExec(fd)
	return &ExecProcess{conn: &syncConn{fd: fd}, Pid: pid}
}

// Conn returns the connection to init as a file, to hand it to a waiter
// process; the caller closes it.
func (p *ExecProcess) Conn() (*os.File, error) {
	fd, err := unix.Dup(p.conn.fd)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "exec-conn"), nil
}

// Pty returns the pty master of a Tty process, nil otherwise.
func (p *ExecProcess) Pty() *os.File { return p.pty }

// Signal sends sig to the process (through init).
func (p *ExecProcess) Signal(sig syscall.Signal) error {
	if p.done {
		return errors.New("process already exited")
	}
	return p.conn.send(controlMsg{Type: ctlSignal, Signal: int(sig)})
}

// Wait waits until the process exits and returns its status (128+n for a
// signal). If the container's init dies first, it reports 137 and
// ErrNotRunning.
func (p *ExecProcess) Wait() (int, error) {
	if p.done {
		return p.code, nil
	}
	for {
		var m message
		fds, err := p.conn.recvRaw(&m)
		closeFDs(fds)
		if err != nil {
			p.done, p.code = true, 128+int(syscall.SIGKILL)
			p.conn.close()
			if errors.Is(err, errPeerClosed) || errors.Is(err, unix.ECONNRESET) {
				return p.code, ErrNotRunning
			}
			return p.code, err
		}
		if m.Type == ctlExit {
			p.done, p.code = true, m.Code
			p.conn.close()
			return p.code, nil
		}
	}
}

// Close drops the connection (which kills the process if it still runs).
func (p *ExecProcess) Close() {
	p.conn.close()
	if p.pty != nil {
		p.pty.Close()
	}
}

// pidfdPid reads the pid a pidfd refers to, as our procfs numbers it.
func pidfdPid(fd int) (int, error) {
	f, err := os.Open("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("pidfd: no Pid in fdinfo")
}

// Unix socket paths are limited to 108 bytes (sun_path). A longer path
// (containerd's state roots are long) is reached through the directory's
// descriptor: /proc/self/fd/N/name resolves like the path.

// ListenControl creates the listening control socket at path (removing a
// stale one) and returns it as a file to pass in Config.Control.
func ListenControl(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	err = withShortPath(path, func(p string) error {
		unix.Unlink(p)
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: p}); err != nil {
			return err
		}
		return unix.Listen(fd, 16)
	})
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

func dialControl(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("control socket: %w", err)
	}
	err = withShortPath(path, func(p string) error {
		return unix.Connect(fd, &unix.SockaddrUnix{Name: p})
	})
	if err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT) {
			return -1, ErrNotRunning
		}
		return -1, fmt.Errorf("connect to control socket %s: %w", path, err)
	}
	return fd, nil
}

func withShortPath(path string, fn func(string) error) error {
	if len(path) < 100 {
		return fn(path)
	}
	dir, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", dir, filepath.Base(path)))
}

// StartContainer asks the init serving control to start the program (OCI
// start) and returns the program's pid in init's namespace, or the
// set-up or exec error (an *InitError with exit code 126/127).
func StartContainer(control string) error {
	fd, err := dialControl(control)
	if err != nil {
		return err
	}
	conn := &syncConn{fd: fd}
	defer conn.close()
	if err := conn.send(controlMsg{Type: ctlStart}); err != nil {
		return fmt.Errorf("send start: %w", err)
	}
	var m message
	fds, err := conn.recvRaw(&m)
	closeFDs(fds)
	if err != nil {
		if errors.Is(err, errPeerClosed) {
			return &InitError{Msg: "container init exited while starting", Code: ExitSetup}
		}
		return fmt.Errorf("start: reading init's answer: %w", err)
	}
	switch m.Type {
	case msgStarted:
		return nil
	case msgError:
		return &InitError{Msg: m.Error, Code: m.Code}
	}
	return fmt.Errorf("start: unexpected answer %q", m.Type)
}
