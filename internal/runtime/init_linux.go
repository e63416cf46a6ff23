package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/ns"
	"github.com/cfs-org/cfs/internal/trace"
)

// InitArg is argv[1] of the re-executed binary when it is a container's init.
const InitArg = "__cfs_init"

// Descriptors the parent passes to init (ExtraFiles start at 3).
const (
	initSyncFD  = 3
	initTraceFD = 4
)

// Init is the container's first process: the cfs binary re-executed by the
// parent inside the new namespaces. It prepares the root filesystem, waits
// for start, then forks the user's program and stays as PID 1 to forward
// signals and reap zombies, exiting with the program's status. It never
// returns. The caller must have locked the main goroutine to the main
// thread (capabilities and namespaces are per thread).
func Init() {
	// No descriptor of the host may reach the container (CVE-2024-21626):
	// everything above stdio is close-on-exec from here on.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	// Non-dumpable: processes in the container cannot open /proc/1/exe,
	// which is the host's cfs binary (CVE-2019-5736).
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	c := &syncConn{fd: initSyncFD}
	var cfg initConfig
	if _, err := c.recvRaw(&cfg); err != nil {
		fmt.Fprintf(os.Stderr, "cfs init: reading config: %v\n", err)
		os.Exit(ExitSetup)
	}
	cfg.Spec = new(specs.Spec)
	if err := json.Unmarshal(cfg.SpecJSON, cfg.Spec); err != nil {
		fmt.Fprintf(os.Stderr, "cfs init: decoding spec: %v\n", err)
		os.Exit(ExitSetup)
	}
	var tr *trace.Tracer
	if cfg.Trace {
		tr = trace.FromFD(initTraceFD, "init")
		tr.SetStart(time.Unix(0, cfg.TraceStart))
	}
	code, err := runInit(c, &cfg, tr)
	if err != nil {
		c.send(message{Type: msgError, Error: err.Error(), Code: code})
		os.Exit(code)
	}
	os.Exit(code)
}

func runInit(c *syncConn, cfg *initConfig, tr *trace.Tracer) (int, error) {
	spec := cfg.Spec
	sigsReady := notifySignals()
	plan, err := ns.PlanFor(spec.Linux.Namespaces)
	if err != nil {
		return ExitSetup, err
	}
	if err := prepareRootfs(c, cfg, plan, tr); err != nil {
		return ExitSetup, err
	}
	if plan.Clone&ns.NEWUTS != 0 && spec.Hostname != "" {
		tr.Step("uts", "sethostname(%q)", spec.Hostname)
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return ExitSetup, fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	if plan.Clone&ns.NEWNET != 0 {
		if err := loopbackUp(tr); err != nil {
			return ExitSetup, err
		}
	}
	proc := spec.Process
	if proc == nil {
		return ExitSetup, errors.New("config has no process")
	}
	var ptyMaster, ptySlave *os.File
	if proc.Terminal {
		ptyMaster, ptySlave, err = openPty(tr)
		if err != nil {
			return ExitSetup, err
		}
		if proc.ConsoleSize != nil {
			unix.IoctlSetWinsize(int(ptyMaster.Fd()), unix.TIOCSWINSZ, &unix.Winsize{
				Row: uint16(proc.ConsoleSize.Height), Col: uint16(proc.ConsoleSize.Width)})
		}
		if err := c.send(message{Type: msgPty}, int(ptyMaster.Fd())); err != nil {
			return ExitSetup, fmt.Errorf("send pty master: %w", err)
		}
		ptyMaster.Close()
	}
	if err := setRlimits(proc.Rlimits, tr); err != nil {
		return ExitSetup, err
	}
	if err := c.send(message{Type: msgReady}); err != nil {
		return ExitSetup, fmt.Errorf("report ready: %w", err)
	}
	if err := waitStart(c, cfg); err != nil {
		return ExitSetup, err
	}
	// The parent has put us in our cgroup by now: a new cgroup namespace
	// rooted there hides the host's hierarchy.
	if plan.Clone&ns.NEWCGROUP != 0 {
		tr.Step("unshare", "unshare(CLONE_NEWCGROUP)")
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return ExitSetup, fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	if proc.OOMScoreAdj != nil {
		os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*proc.OOMScoreAdj)), 0)
	}
	if err := dropBounding(proc.Capabilities, tr); err != nil {
		return ExitSetup, err
	}
	if proc.NoNewPrivileges {
		tr.Step("prctl", "PR_SET_NO_NEW_PRIVS")
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return ExitSetup, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	if err := ensureCwd(proc.Cwd, tr); err != nil {
		return ExitSetup, err
	}
	argv0, code, err := lookPath(proc.Args, proc.Env, proc.Cwd)
	if err != nil {
		return code, err
	}
	stdio := []uintptr{0, 1, 2}
	attr := &syscall.SysProcAttr{
		Setsid:     true,
		Credential: &syscall.Credential{Uid: proc.User.UID, Gid: proc.User.GID, Groups: proc.User.AdditionalGids},
	}
	if proc.User.AdditionalGids == nil {
		attr.Credential.Groups = []uint32{}
	}
	if ptySlave != nil {
		fd := ptySlave.Fd()
		stdio = []uintptr{fd, fd, fd}
		attr.Setctty = true
		attr.Ctty = 0
	}
	if tr.On() {
		tr.Step("exec", "fork, setsid, setgroups(%v), setgid(%d), setuid(%d), chdir(%q)", attr.Credential.Groups, proc.User.GID, proc.User.UID, proc.Cwd)
		tr.Step("exec", "execve(%q, %q, env=%q)", argv0, proc.Args, proc.Env)
	}
	// Signals must be caught before the child exists so none is lost; the
	// subscription (begun in notifySignals) is complete by now.
	sigs := <-sigsReady
	pid, err := syscall.ForkExec(argv0, proc.Args, &syscall.ProcAttr{
		Dir:   proc.Cwd,
		Env:   proc.Env,
		Files: stdio,
		Sys:   attr,
	})
	if err != nil {
		return execErrorCode(err), fmt.Errorf("exec %q: %w", proc.Args[0], err)
	}
	if ptySlave != nil {
		ptySlave.Close()
	}
	c.send(message{Type: msgStarted, Pid: pid})
	c.close()
	if tr.On() {
		tr.Step("wait", "pid 1 forwards signals to pid %d and reaps zombies", pid)
	}
	return reap(pid, sigs), nil
}

// notifySignals subscribes to every signal in the background: enabling ~65
// signals costs the Go runtime a thread hand-off each (~1.5 ms in all),
// which overlaps with building the root filesystem this way.
func notifySignals() <-chan chan os.Signal {
	ready := make(chan chan os.Signal, 1)
	go func() {
		sigs := make(chan os.Signal, 64)
		signal.Notify(sigs)
		ready <- sigs
	}()
	return ready
}

// ensureCwd creates the working directory when the image lacks it, as
// Docker does for WORKDIR and -w.
func ensureCwd(cwd string, tr *trace.Tracer) error {
	if cwd == "" || cwd == "/" {
		return nil
	}
	if st, err := os.Stat(cwd); err == nil {
		if !st.IsDir() {
			return fmt.Errorf("working directory %q: not a directory", cwd)
		}
		return nil
	}
	tr.Step("mkdir", "%s (working directory)", cwd)
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return fmt.Errorf("create working directory %q: %w", cwd, err)
	}
	return nil
}

func waitStart(c *syncConn, cfg *initConfig) error {
	if cfg.ExecFIFO != "" {
		// Blocks until `start` opens the FIFO for reading.
		f, err := os.OpenFile(cfg.ExecFIFO, os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("open exec fifo: %w", err)
		}
		f.Write([]byte{0})
		f.Close()
		return nil
	}
	var m message
	if _, err := c.recvRaw(&m); err != nil {
		return fmt.Errorf("waiting for start: %w", err)
	}
	if m.Type != msgStart {
		return fmt.Errorf("waiting for start: got %q", m.Type)
	}
	return nil
}

// reap forwards signals to the main process and reaps every child until
// the main process exits; it returns the exit code to report (128+n for a
// signal, as shells do).
func reap(main int, sigs chan os.Signal) int {
	for sig := range sigs {
		s := sig.(syscall.Signal)
		if s != syscall.SIGCHLD {
			if s != syscall.SIGURG { // the Go runtime's own preemption signal
				unix.Kill(main, s)
			}
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				break
			}
			if pid == main {
				if ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				return ws.ExitStatus()
			}
		}
	}
	return ExitSetup
}

func execErrorCode(err error) int {
	if errors.Is(err, unix.ENOENT) {
		return ExitNotFound
	}
	return ExitNotExecutable
}

// lookPath resolves args[0] against the container's PATH (not ours) and
// checks it can be executed, so the error and exit code are the ones a
// shell gives: 127 not found, 126 not executable.
func lookPath(args, env []string, cwd string) (string, int, error) {
	if len(args) == 0 || args[0] == "" {
		return "", ExitSetup, errors.New("no command given and the image has no entrypoint or cmd")
	}
	file := args[0]
	check := func(p string) (int, error) {
		st, err := os.Stat(p)
		if err != nil {
			return ExitNotFound, err
		}
		if st.IsDir() {
			return ExitNotExecutable, fmt.Errorf("%s: is a directory", p)
		}
		if err := unix.Access(p, unix.X_OK); err != nil || st.Mode()&0o111 == 0 {
			return ExitNotExecutable, fmt.Errorf("%s: permission denied", p)
		}
		return 0, nil
	}
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(cwd, p)
		}
		if code, err := check(p); err != nil {
			if code == ExitNotFound {
				return "", code, fmt.Errorf("exec %q: no such file or directory", file)
			}
			return "", code, fmt.Errorf("exec %q: %v", file, err)
		}
		return file, 0, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[5:]
		}
	}
	denied := ""
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		code, err := check(p)
		if err == nil {
			return p, 0, nil
		}
		if code == ExitNotExecutable && denied == "" {
			denied = p
		}
	}
	if denied != "" {
		return "", ExitNotExecutable, fmt.Errorf("exec %q: %s: permission denied", file, denied)
	}
	return "", ExitNotFound, fmt.Errorf("exec %q: executable file not found in $PATH", file)
}

func setRlimits(rl []specs.POSIXRlimit, tr *trace.Tracer) error {
	for _, r := range rl {
		res, ok := rlimitByName[r.Type]
		if !ok {
			return fmt.Errorf("rlimit %q: unknown", r.Type)
		}
		tr.Step("rlimit", "setrlimit(%s, soft=%d, hard=%d)", r.Type, r.Soft, r.Hard)
		if err := unix.Prlimit(0, res, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}, nil); err != nil {
			return fmt.Errorf("rlimit %s (soft %d, hard %d): %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

var rlimitByName = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// loopbackUp brings lo up in the new network namespace (SIOCSIFFLAGS is one
// ioctl; netlink would cost a socket round trip more).
func loopbackUp(tr *trace.Tracer) error {
	tr.Step("net", "ioctl(SIOCSIFFLAGS, lo, IFF_UP)")
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	return nil
}

// openPty opens a pty pair on the container's own devpts instance, so the
// program sees a terminal that exists in its /dev/pts.
func openPty(tr *trace.Tracer) (master, slave *os.File, err error) {
	tr.Step("pty", "open /dev/ptmx, unlockpt, open the slave")
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	// TIOCGPTPEER opens the slave through the master, with no path lookup.
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	sfd := int(r)
	if errno != 0 {
		// TIOCGPTPEER wants O_RDWR|O_NOCTTY in its argument; fall back.
		n, err2 := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
		if err2 != nil {
			m.Close()
			return nil, nil, fmt.Errorf("ptsname: %w", err2)
		}
		s, err3 := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
		if err3 != nil {
			m.Close()
			return nil, nil, fmt.Errorf("open pty slave: %w", err3)
		}
		return m, s, nil
	}
	return m, os.NewFile(uintptr(sfd), "pty"), nil
}
