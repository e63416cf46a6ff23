package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/trace"
)

// The control socket: how other processes reach a container's init.
//
// The runtime creates a listening SOCK_SEQPACKET unix socket before init
// starts (Config.Control) and passes it to init as an inherited
// descriptor; its path is under the runtime's state directory, never in
// the container. Init accepts connections once the root filesystem is
// ready. One request per connection:
//
//	start   OCI start from another process: init runs startContainer
//	        hooks, forks the program and answers "started" (or "error").
//	exec    run another process in the container: init forks it from its
//	        main thread, which is already in every namespace (user and
//	        mount included) and the cgroup, and carries the container's
//	        bounding set, no_new_privs and seccomp filter. The answer
//	        "started" carries a pidfd of the process (and the pty master
//	        with a terminal); the connection then stays open: the requester
//	        may send "signal" messages, and init sends "exit" with the
//	        status once it reaped the process. If the requester goes away
//	        first, init kills the process: its lifetime is bounded by the
//	        requester's (a detached exec leaves a small waiter, see Exec).
//
// Why init forks exec'd processes instead of the requester joining the
// namespaces with setns: setns into a user or mount namespace needs a
// single-threaded process (or, for the mount namespace, an unshared
// fs_struct), and so does setns into a time namespace; a Go program is
// multi-threaded before main runs. runc solves this with a C constructor
// (nsexec) that runs before the Go runtime; without cgo, init is the one
// process already inside everything.

// Control message types.
const (
	ctlStart  = "start"
	ctlExec   = "exec"
	ctlSignal = "signal"
	ctlExit   = "exit"
)

// controlMsg is a request on the control socket.
type controlMsg struct {
	Type string `json:"type"`
	// Process is the *specs.Process of "exec", left encoded here so that
	// the other messages do not build JSON codecs for its type graph
	// (about a millisecond of CPU in each process that would).
	Process json.RawMessage `json:"process,omitempty"`
	// Signal for "signal".
	Signal int `json:"signal,omitempty"`
	// Tty: open a pty in the container for the process; its master is
	// sent back with "started". Otherwise the request carries the
	// process's stdin, stdout and stderr (Stdio).
	Tty   bool `json:"tty,omitempty"`
	Stdio bool `json:"stdio,omitempty"`
	// ExtraFDs: descriptors attached after stdio that become the
	// process's 3, 4, ...
	ExtraFDs int `json:"extraFds,omitempty"`
}

// ctlRequest is an accepted connection with its first message.
type ctlRequest struct {
	conn *syncConn
	msg  controlMsg
	fds  []int
}

// ctlEvent comes from the connection of a running exec'd process.
type ctlEvent struct {
	id     int
	signal int
	hangup bool
}

type controlServer struct {
	reqs   chan ctlRequest
	events chan ctlEvent
	// execs are the running exec'd processes by pid (init's pid
	// namespace); ids are unique, pids may be reused.
	execs  map[int]*execEntry
	nextID int
}

type execEntry struct {
	id   int
	conn *syncConn
}

// startControlServer accepts connections on the listening socket lfd in
// the background and hands each first message to the main loop.
func startControlServer(lfd int) *controlServer {
	s := &controlServer{
		reqs:   make(chan ctlRequest),
		events: make(chan ctlEvent, 16),
		execs:  map[int]*execEntry{},
	}
	go func() {
		for {
			nfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
			if err == unix.EINTR || err == unix.ECONNABORTED {
				continue
			}
			if err != nil {
				return
			}
			go func() {
				conn := &syncConn{fd: nfd}
				var m controlMsg
				fds, err := conn.recvRaw(&m)
				if err != nil {
					for _, fd := range fds {
						unix.Close(fd)
					}
					conn.close()
					return
				}
				s.reqs <- ctlRequest{conn: conn, msg: m, fds: fds}
			}()
		}
	}()
	return s
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func (r *ctlRequest) fail(code int, format string, args ...any) {
	r.conn.send(message{Type: msgError, Error: fmt.Sprintf(format, args...), Code: code})
	r.conn.close()
	closeFDs(r.fds)
}

// waitStartRequest waits, in the created state, for a "start" request on
// the control socket, or a "start" message from the parent on the sync
// socket (Container.Start, for a parent that also passed a control
// socket). It returns code >= 0 when init must exit instead (a signal
// whose default action ends a process, as it would for runc's init).
func (in *initProc) waitStartRequest() (int, error) {
	syncStart := make(chan struct{}, 1)
	parentGone := make(chan struct{}, 1)
	go func() {
		// The OCI create process closes its end when it exits: that is
		// not a start, only the end of this reader.
		var m message
		if _, err := in.c.recvRaw(&m); err == nil && m.Type == msgStart {
			in.startSpec = m.Spec
			syncStart <- struct{}{}
		} else if in.cfg.ExitWithParent {
			parentGone <- struct{}{}
		}
	}()
	for {
		select {
		case <-syncStart:
			return -1, nil
		case <-parentGone:
			return ExitSetup, errors.New("the process that created the container exited before starting it")
		case sig := <-in.sigs:
			s := sig.(syscall.Signal)
			switch s {
			case syscall.SIGCHLD, syscall.SIGURG, syscall.SIGWINCH, syscall.SIGCONT, syscall.SIGPIPE,
				syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
				continue
			}
			return 128 + int(s), nil
		case r := <-in.ctl.reqs:
			switch r.msg.Type {
			case ctlStart:
				closeFDs(r.fds)
				in.startReq = &r
				return -1, nil
			case ctlExec:
				r.fail(ExitSetup, "container is not running (created: start it first)")
			default:
				r.fail(ExitSetup, "request %q: not valid before start", r.msg.Type)
			}
		}
	}
}

// supervise is init's main loop once the program runs: it forwards
// signals to the program, reaps every child, serves exec requests and
// returns the program's exit code (128+n for a signal, as shells do).
func (in *initProc) supervise(main int) int {
	var reqs chan ctlRequest
	var events chan ctlEvent
	if in.ctl != nil {
		reqs, events = in.ctl.reqs, in.ctl.events
	}
	for {
		select {
		case sig := <-in.sigs:
			s := sig.(syscall.Signal)
			switch s {
			case syscall.SIGCHLD:
				if code, done := in.reap(main); done {
					in.endExecs()
					return code
				}
			case syscall.SIGURG: // the Go runtime's own preemption signal
			default:
				unix.Kill(main, s)
			}
		case r := <-reqs:
			switch r.msg.Type {
			case ctlExec:
				in.exec(&r)
			case ctlStart:
				r.fail(ExitSetup, "container already started")
			default:
				r.fail(ExitSetup, "request %q: unknown", r.msg.Type)
			}
		case ev := <-events:
			for pid, e := range in.ctl.execs {
				if e.id != ev.id {
					continue
				}
				if ev.hangup {
					// The requester is gone: the process goes with it.
					unix.Kill(pid, unix.SIGKILL)
				} else if ev.signal > 0 {
					unix.Kill(pid, syscall.Signal(ev.signal))
				}
			}
		}
	}
}

// reap collects every exited child; done is set when main exited.
func (in *initProc) reap(main int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return code, done
		}
		status := exitCode(ws)
		if pid == main {
			code, done = status, true
			continue
		}
		if in.ctl != nil {
			if e, ok := in.ctl.execs[pid]; ok {
				delete(in.ctl.execs, pid)
				e.conn.send(message{Type: ctlExit, Code: status})
				// Wakes the watcher, which closes the connection.
				unix.Shutdown(e.conn.fd, unix.SHUT_RDWR)
			}
		}
	}
}

func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// endExecs kills the exec'd processes still running when the program
// exits (in a pid namespace of its own they die with init anyway) and
// reports their end to their requesters.
func (in *initProc) endExecs() {
	if in.ctl == nil {
		return
	}
	for pid, e := range in.ctl.execs {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		e.conn.send(message{Type: ctlExit, Code: exitCode(ws)})
		e.conn.close()
	}
}

// exec runs an exec request (see the package comment above).
func (in *initProc) exec(r *ctlRequest) {
	proc := new(specs.Process)
	if err := json.Unmarshal(r.msg.Process, proc); err != nil {
		r.fail(ExitSetup, "exec: decoding the process: %v", err)
		return
	}
	if len(proc.Args) == 0 {
		r.fail(ExitSetup, "exec: no process arguments")
		return
	}
	if proc.Cwd == "" {
		proc.Cwd = "/"
	}
	fds := r.fds
	var files []uintptr
	var master *os.File
	if r.msg.Tty {
		m, slave, err := openPty(in.tr)
		if err != nil {
			r.fail(ExitSetup, "exec: %v", err)
			return
		}
		master = m
		defer master.Close()
		defer slave.Close()
		if proc.ConsoleSize != nil {
			unix.IoctlSetWinsize(int(m.Fd()), unix.TIOCSWINSZ, &unix.Winsize{
				Row: uint16(proc.ConsoleSize.Height), Col: uint16(proc.ConsoleSize.Width)})
		}
		fd := slave.Fd()
		files = []uintptr{fd, fd, fd}
	} else if r.msg.Stdio {
		if len(fds) < 3 {
			r.fail(ExitSetup, "exec: request without stdio descriptors")
			return
		}
		files = []uintptr{uintptr(fds[0]), uintptr(fds[1]), uintptr(fds[2])}
		fds = fds[3:]
	} else {
		files = []uintptr{devNullFD(), devNullFD(), devNullFD()}
	}
	if len(fds) < r.msg.ExtraFDs {
		r.fail(ExitSetup, "exec: %d extra descriptors announced, %d received", r.msg.ExtraFDs, len(fds))
		return
	}
	for _, fd := range fds[:r.msg.ExtraFDs] {
		files = append(files, uintptr(fd))
	}
	pidfd := -1
	pid, code, err := in.forkExec(proc, files, r.msg.Tty, &pidfd)
	closeFDs(r.fds)
	if err != nil {
		r.conn.send(message{Type: msgError, Error: err.Error(), Code: code})
		r.conn.close()
		return
	}
	adj := in.spec.Process.OOMScoreAdj
	if proc.OOMScoreAdj != nil {
		adj = proc.OOMScoreAdj
	}
	v := 0
	if adj != nil {
		v = *adj
	}
	// Init's own score may have been lowered by the runtime (see Start).
	os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(v)), 0)
	out := []int{}
	if pidfd >= 0 {
		out = append(out, pidfd)
		defer unix.Close(pidfd)
	}
	if master != nil {
		out = append(out, int(master.Fd()))
	}
	r.conn.send(message{Type: msgStarted, Pid: pid}, out...)
	in.ctl.nextID++
	e := &execEntry{id: in.ctl.nextID, conn: r.conn}
	in.ctl.execs[pid] = e
	go watchExec(e, in.ctl.events)
}

// watchExec relays "signal" messages from an exec requester and reports
// its hang-up; it owns closing the connection.
func watchExec(e *execEntry, events chan<- ctlEvent) {
	defer e.conn.close()
	for {
		var m controlMsg
		fds, err := e.conn.recvRaw(&m)
		closeFDs(fds)
		if err != nil {
			events <- ctlEvent{id: e.id, hangup: true}
			return
		}
		if m.Type == ctlSignal && m.Signal > 0 {
			events <- ctlEvent{id: e.id, signal: m.Signal}
		}
	}
}

var devNull = -1

func devNullFD() uintptr {
	if devNull < 0 {
		devNull, _ = unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	}
	return uintptr(devNull)
}

// forkExec forks an exec'd process with the container's security
// settings. Same bounding set and no_new_privs as the container: from the
// main thread, which carries them (and the seccomp filter, and the time
// namespace for children). A narrower bounding set or no_new_privs the
// container lacks: from a fresh thread set up the same way, then
// narrowed. Capabilities beyond the container's bounding set are never
// granted.
func (in *initProc) forkExec(proc *specs.Process, files []uintptr, tty bool, pidfd *int) (int, int, error) {
	bounding := in.sec.bounding
	inh := []string(nil)
	if caps := proc.Capabilities; caps != nil {
		b, err := capsOf(caps.Bounding)
		if err != nil {
			return 0, ExitSetup, err
		}
		bounding &= b
		inh = caps.Inheritable
	}
	// Ambient capabilities must be in the bounding set to be raised.
	p := *proc
	if p.Capabilities != nil {
		c := *p.Capabilities
		c.Ambient = nil
		for _, name := range proc.Capabilities.Ambient {
			if n, ok := CapNumber(name); ok && bounding&(1<<n) != 0 {
				c.Ambient = append(c.Ambient, name)
			}
		}
		p.Capabilities = &c
	}
	restoreLimits, err := setExecRlimits(proc.Rlimits, in.tr)
	if err != nil {
		return 0, ExitSetup, err
	}
	defer restoreLimits()
	fresh := bounding != in.sec.bounding || (proc.NoNewPrivileges && !in.sec.nnp)
	if !fresh {
		if err := setInheritable(inh, bounding); err != nil {
			return 0, ExitSetup, err
		}
		defer setInheritable(in.containerInheritable(), in.sec.bounding)
		return forkProcess(&p, files, tty, pidfd, in.tr)
	}
	if in.timeNS {
		return 0, ExitSetup, errors.New("exec: a narrower capability bounding set or no_new_privs than the container's is not supported in a container with its own time namespace")
	}
	type result struct {
		pid, code int
		err       error
	}
	ch := make(chan result, 1)
	mainTid := unix.Gettid()
	go func() {
		// Never unlocked: the thread, with its narrowed security, ends
		// with this goroutine.
		goruntime.LockOSThread()
		pid, code, err := func() (int, int, error) {
			cg, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/cgroup", mainTid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return 0, ExitSetup, fmt.Errorf("exec: open init's cgroup namespace: %w", err)
			}
			err = unix.Setns(cg, unix.CLONE_NEWCGROUP)
			unix.Close(cg)
			if err != nil {
				return 0, ExitSetup, fmt.Errorf("exec: join init's cgroup namespace: %w", err)
			}
			if pers := in.spec.Linux.Personality; pers != nil {
				if err := setPersonality(pers, nil); err != nil {
					return 0, ExitSetup, err
				}
			}
			if err := dropBounding(bounding, nil); err != nil {
				return 0, ExitSetup, err
			}
			if err := setInheritable(inh, bounding); err != nil {
				return 0, ExitSetup, err
			}
			if proc.NoNewPrivileges || in.sec.nnp {
				if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
					return 0, ExitSetup, fmt.Errorf("set no_new_privs: %w", err)
				}
			}
			if in.sec.seccomp {
				if err := loadSeccomp(in.spec.Linux.Seccomp, nil); err != nil {
					return 0, ExitSetup, err
				}
			}
			return forkProcess(&p, files, tty, pidfd, in.tr)
		}()
		ch <- result{pid, code, err}
	}()
	r := <-ch
	return r.pid, r.code, r.err
}

func (in *initProc) containerInheritable() []string {
	if c := in.spec.Process.Capabilities; c != nil {
		return c.Inheritable
	}
	return nil
}

// setExecRlimits applies an exec'd process's rlimits to init for the
// fork (rlimits are per process) and returns how to restore init's.
func setExecRlimits(rl []specs.POSIXRlimit, tr *trace.Tracer) (func(), error) {
	if len(rl) == 0 {
		return func() {}, nil
	}
	saved := map[int]syscall.Rlimit{}
	for _, r := range rl {
		if res, ok := rlimitByName[r.Type]; ok {
			var cur syscall.Rlimit
			syscall.Getrlimit(res, &cur)
			saved[res] = cur
		}
	}
	restore := func() {
		for res, l := range saved {
			syscall.Setrlimit(res, &l)
		}
	}
	if err := setRlimits(rl, tr); err != nil {
		restore()
		return nil, err
	}
	return restore, nil
}

// setPersonality sets the execution domain of the calling thread, which
// the processes it forks inherit (personality(2)).
func setPersonality(p *specs.LinuxPersonality, tr *trace.Tracer) error {
	var v uintptr
	switch p.Domain {
	case specs.PerLinux:
		v = 0x0000
	case specs.PerLinux32:
		v = 0x0008
	default:
		return fmt.Errorf("personality domain %q: unknown", p.Domain)
	}
	if len(p.Flags) > 0 {
		return fmt.Errorf("personality flags %v: not supported", p.Flags)
	}
	tr.Step("personality", "personality(%s)", p.Domain)
	if _, _, errno := unix.RawSyscall(unix.SYS_PERSONALITY, v, 0, 0); errno != 0 {
		return fmt.Errorf("personality %s: %w", p.Domain, errno)
	}
	return nil
}
