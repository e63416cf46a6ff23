package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
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

// initSyncFD is the sync socket, the parent's first ExtraFile; the other
// descriptors it passes are numbered in initConfig.
const initSyncFD = 3

// Init is the container's first process: the cfs binary re-executed by the
// parent inside the new namespaces. It prepares the root filesystem, waits
// for start, then forks the user's program and stays as PID 1 to forward
// signals, reap zombies and serve exec requests (control_linux.go),
// exiting with the program's status. It never returns. The caller must
// have locked the main goroutine to the main thread (capabilities,
// seccomp and namespaces are per thread).
func Init() {
	// No descriptor of the host may reach the container (CVE-2024-21626):
	// everything above stdio is close-on-exec from here on.
	unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	// Non-dumpable: processes in the container cannot open /proc/1/exe,
	// which is the host's cfs binary (CVE-2019-5736).
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)

	// Subscribing to every signal costs the Go runtime a round trip with
	// its signal thread per signal (about 1.5 ms for the 64 of them):
	// begun first, it overlaps with everything init does before start.
	sigsReady := notifySignals()
	c := &syncConn{fd: initSyncFD}
	var cfg initConfig
	if os.Getenv(spareEnv) != "" {
		// Spawned ahead of its container: build the spec decoder's view
		// of the spec's types while the config is not there yet.
		go warmSpecDecoder()
	}
	fds, err := c.recvRaw(&cfg)
	if err == nil && cfg.ControlInMessage {
		err = errors.New("control socket descriptor missing")
		if n := len(fds); n > 0 {
			cfg.ControlFD, fds, err = fds[n-1], fds[:n-1], nil
		}
	}
	if err == nil && cfg.SpecFD {
		err = errors.New("spec descriptor missing")
		if len(fds) == 1 {
			f := os.NewFile(uintptr(fds[0]), "spec")
			cfg.SpecJSON, err = io.ReadAll(f)
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "cfs init: reading config: %v\n", err)
		os.Exit(ExitSetup)
	}
	var tr *trace.Tracer
	if cfg.Trace && cfg.TraceFD > 0 {
		tr = trace.FromFD(cfg.TraceFD, "init")
		tr.SetStart(time.Unix(0, cfg.TraceStart))
	}
	in := &initProc{c: c, cfg: &cfg, tr: tr, sigsReady: sigsReady}
	cfg.Spec = new(specs.Spec)
	decoded := make(chan error, 1)
	decode := func() { decoded <- json.Unmarshal(cfg.SpecJSON, cfg.Spec) }
	var early error
	switch {
	case cfg.EarlyRoot && goruntime.GOMAXPROCS(0) > 1:
		// The overlay mount (kernel time) and the decode overlap, on
		// the two Ps of a foreground container's init (FastStart).
		go decode()
		early = mountEarlyRoot(&cfg, tr)
	case cfg.EarlyRoot:
		// One P: a goroutine would run only once the mount returns (or
		// once sysmon, which sleeps up to 10 ms in an idle process, took
		// the P back); decode first.
		decode()
		early = mountEarlyRoot(&cfg, tr)
	default:
		decode()
	}
	if err := <-decoded; err != nil {
		fmt.Fprintf(os.Stderr, "cfs init: decoding spec: %v\n", err)
		os.Exit(ExitSetup)
	}
	in.spec = cfg.Spec
	code, err := ExitSetup, early
	if early == nil {
		code, err = in.run()
	}
	if err != nil {
		in.fail(err, code)
	}
	os.Exit(code)
}

// initProc is the state of the container's init.
type initProc struct {
	c    *syncConn
	cfg  *initConfig
	spec *specs.Spec
	tr   *trace.Tracer
	plan ns.Plan
	// sigsReady delivers sigs once every signal is subscribed to.
	sigsReady <-chan chan os.Signal
	sigs      chan os.Signal
	// ctl serves the control socket (OCI start, exec), nil without one;
	// startReq is the request that started the program, answered once it
	// runs.
	ctl      *controlServer
	startReq *ctlRequest
	ptySlave *os.File
	// timeNS: the program runs in a new time namespace (unshared for
	// children by the main thread), so every process must be forked from
	// the main thread.
	timeNS bool
	// sec is the security state of the main thread once set: the bounding
	// set and no_new_privs that exec'd processes inherit.
	sec threadSecurity
	// startSpec is the spec that came with start, if any (StartWith).
	startSpec []byte
}

// fail reports a set-up error to whoever waits for it: the parent (sync
// socket) or the `start` request on the control socket.
func (in *initProc) fail(err error, code int) {
	m := message{Type: msgError, Error: err.Error(), Code: code}
	if in.startReq != nil {
		in.startReq.conn.send(m)
	}
	in.c.send(m)
}

func (in *initProc) run() (int, error) {
	cfg, spec, tr := in.cfg, in.spec, in.tr
	var err error
	in.plan, err = ns.PlanFor(spec.Linux.Namespaces)
	if err != nil {
		return ExitSetup, err
	}
	plan := in.plan
	proc := spec.Process
	if proc == nil {
		if cfg.ControlFD <= 0 {
			return ExitSetup, errors.New("config has no process")
		}
		// OCI: process is optional at create, required at start.
		proc = &specs.Process{}
	}
	if err := mountRootfs(in.c, cfg, plan, tr); err != nil {
		return ExitSetup, err
	}
	if plan.Clone&ns.NEWTIME != 0 {
		if err := newTimeNamespace(spec.Linux.TimeOffsets, tr); err != nil {
			return ExitSetup, err
		}
		in.timeNS = true
	}
	// Namespaces and mounts exist: the runtime runs prestart and
	// createRuntime hooks now, then we run createContainer hooks here, in
	// the container's namespaces and still before pivot_root (config.md,
	// "POSIX-platform Hooks").
	if cfg.ParentHooks {
		if err := in.c.send(message{Type: msgHooks}); err != nil {
			return ExitSetup, fmt.Errorf("report hooks: %w", err)
		}
		var m message
		if _, err := in.c.recvRaw(&m); err != nil || m.Type != msgResume {
			return ExitSetup, fmt.Errorf("waiting for the runtime's hooks: %v (%q)", err, m.Type)
		}
	}
	if err := RunHooks(HookCreateContainer, HooksOf(spec, HookCreateContainer), in.state(specs.StateCreating), tr); err != nil {
		return ExitSetup, err
	}
	if err := finishRootfs(cfg, plan, tr); err != nil {
		return ExitSetup, err
	}
	if spec.Hostname != "" && plan.Has(specs.UTSNamespace) {
		tr.Step("uts", "sethostname(%q)", spec.Hostname)
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return ExitSetup, fmt.Errorf("set hostname %q: %w", spec.Hostname, err)
		}
	}
	if spec.Domainname != "" && plan.Has(specs.UTSNamespace) {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return ExitSetup, fmt.Errorf("set domainname %q: %w", spec.Domainname, err)
		}
	}
	if plan.Clone&ns.NEWNET != 0 {
		if err := loopbackUp(tr); err != nil {
			return ExitSetup, err
		}
	}
	if proc.Terminal {
		master, slave, err := openPty(tr)
		if err != nil {
			return ExitSetup, err
		}
		in.ptySlave = slave
		if proc.ConsoleSize != nil {
			unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{
				Row: uint16(proc.ConsoleSize.Height), Col: uint16(proc.ConsoleSize.Width)})
		}
		if err := in.c.send(message{Type: msgPty}, int(master.Fd())); err != nil {
			return ExitSetup, fmt.Errorf("send pty master: %w", err)
		}
		master.Close()
	}
	if cfg.ControlFD > 0 {
		in.ctl = startControlServer(cfg.ControlFD)
	}
	if err := in.c.send(message{Type: msgReady}); err != nil {
		return ExitSetup, fmt.Errorf("report ready: %w", err)
	}
	// The parent joins the memory hierarchy and sets the limits, then
	// says so: now we are in our cgroup everywhere, and a new cgroup
	// namespace rooted there hides the host's hierarchy.
	var m message
	if _, err := in.c.recvRaw(&m); err != nil || m.Type != msgResume {
		return ExitSetup, fmt.Errorf("waiting for the cgroup: %v (%q)", err, m.Type)
	}
	if plan.Clone&ns.NEWCGROUP != 0 {
		tr.Step("unshare", "unshare(CLONE_NEWCGROUP)")
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return ExitSetup, fmt.Errorf("unshare cgroup namespace: %w", err)
		}
	}
	in.sigs = <-in.sigsReady
	if in.ctl != nil {
		code, err := in.waitStartRequest()
		if err != nil || code >= 0 {
			return code, err
		}
	} else if in.startSpec, err = waitStart(in.c, cfg); err != nil {
		return ExitSetup, err
	}
	if len(in.startSpec) > 0 {
		spec := new(specs.Spec)
		if err := json.Unmarshal(in.startSpec, spec); err != nil {
			return ExitSetup, fmt.Errorf("decoding the spec given at start: %w", err)
		}
		if spec.Linux == nil {
			return ExitSetup, errors.New("the spec given at start has no linux section")
		}
		in.spec, cfg.Spec = spec, spec
		tr.Step("start", "the spec given at start replaces the one of set-up (its process: %q)", processArgs(spec))
	}
	pid, code, err := in.startProgram()
	if err != nil {
		if in.startReq == nil || (code != ExitNotFound && code != ExitNotExecutable) {
			return code, err
		}
		// OCI start: the program could not be executed. start itself
		// succeeds (runtime.md asks for an error only when process is
		// unset); the container stops at once with the shell's status
		// and the reason on its stderr.
		fmt.Fprintf(os.Stderr, "cfs-runtime: %v\n", err)
		in.startReq.conn.send(message{Type: msgStarted})
		in.startReq.conn.close()
		in.startReq = nil
		return code, nil
	}
	started := message{Type: msgStarted, Pid: pid}
	if in.startReq != nil {
		in.startReq.conn.send(started)
		in.startReq.conn.close()
		in.startReq = nil
	}
	in.c.send(started)
	in.c.close()
	if tr.On() {
		tr.Step("wait", "pid 1 forwards signals to pid %d and reaps zombies", pid)
	}
	// From here init only waits: one P is enough, and smaller.
	goruntime.GOMAXPROCS(1)
	return in.supervise(pid), nil
}

// state is the container state given to hooks that init runs.
func (in *initProc) state(status specs.ContainerState) *specs.State {
	return &specs.State{
		Version: specs.Version, ID: in.cfg.ID, Status: status, Pid: in.cfg.HostPid,
		Bundle: in.cfg.Bundle, Annotations: in.spec.Annotations,
	}
}

// startProgram applies the container's security settings to the main
// thread, runs startContainer hooks and forks the program from it.
func (in *initProc) startProgram() (pid, code int, err error) {
	spec, proc, tr := in.spec, in.spec.Process, in.tr
	if proc == nil {
		return 0, ExitSetup, errors.New("process is not set in the config: nothing to start")
	}
	if len(proc.Args) == 0 {
		return 0, ExitSetup, errors.New("process.args is empty")
	}
	if proc.OOMScoreAdj != nil {
		tr.Step("oom", "oom_score_adj = %d", *proc.OOMScoreAdj)
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*proc.OOMScoreAdj)), 0); err != nil {
			// Lowering the score needs CAP_SYS_RESOURCE, which some hosts
			// (the development VM) do not give even to root; CRI asks
			// -998 for every pod sandbox. Keep the current score then.
			if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
				return 0, ExitSetup, fmt.Errorf("set oom_score_adj %d: %w", *proc.OOMScoreAdj, err)
			}
			tr.Step("oom", "oom_score_adj %d refused (no CAP_SYS_RESOURCE): keeping the current score", *proc.OOMScoreAdj)
		}
	}
	if err := RunHooks(HookStartContainer, HooksOf(spec, HookStartContainer), in.state(specs.StateCreated), tr); err != nil {
		return 0, ExitSetup, err
	}
	if err := ensureCwd(proc.Cwd, tr); err != nil {
		return 0, ExitSetup, err
	}
	if spec.Linux.Personality != nil {
		if err := setPersonality(spec.Linux.Personality, tr); err != nil {
			return 0, ExitSetup, err
		}
	}
	// Security last: bounding set and inheritable capabilities, then
	// no_new_privs, then the seccomp filter, all on this (main) thread,
	// which every process of the container is forked from.
	in.sec, err = applyThreadSecurity(proc, spec.Linux.Seccomp, tr)
	if err != nil {
		return 0, ExitSetup, err
	}
	stdio := []uintptr{0, 1, 2}
	if in.ptySlave != nil {
		fd := in.ptySlave.Fd()
		stdio = []uintptr{fd, fd, fd}
	}
	for _, fd := range in.cfg.ExtraFDs {
		stdio = append(stdio, uintptr(fd))
	}
	// Rlimits are per process: set on init just before the fork, so the
	// program gets them from its first instruction; init then takes back
	// its soft limits up to the (lowered) hard ones, so that a small
	// RLIMIT_AS or RLIMIT_CPU meant for the program does not end init,
	// a Go process with a large address space reservation.
	if err := setRlimits(proc.Rlimits, tr); err != nil {
		return 0, ExitSetup, err
	}
	pid, code, err = forkProcess(proc, stdio, in.ptySlave != nil, nil, tr)
	softToHard(proc.Rlimits)
	if in.ptySlave != nil {
		in.ptySlave.Close()
		in.ptySlave = nil
	}
	for _, fd := range in.cfg.ExtraFDs {
		unix.Close(fd)
	}
	return pid, code, err
}

// forkProcess forks and execs proc from the calling thread with the given
// descriptors (0, 1, 2 and up). The calling thread's bounding set,
// inheritable set, no_new_privs and seccomp filter are inherited. pidfd,
// when not nil, receives a pidfd of the child.
func forkProcess(proc *specs.Process, files []uintptr, tty bool, pidfd *int, tr *trace.Tracer) (int, int, error) {
	argv0, code, err := lookPath(proc.Args, proc.Env, proc.Cwd)
	if err != nil {
		return 0, code, err
	}
	attr := &syscall.SysProcAttr{
		Setsid:     true,
		Credential: &syscall.Credential{Uid: proc.User.UID, Gid: proc.User.GID, Groups: proc.User.AdditionalGids},
		PidFD:      pidfd,
	}
	if proc.User.AdditionalGids == nil {
		attr.Credential.Groups = []uint32{}
	}
	if tty {
		attr.Setctty = true
		attr.Ctty = 0
	}
	if proc.Capabilities != nil {
		// Ambient capabilities outside the bounding set cannot be raised
		// (applyThreadSecurity warned about them).
		var bounding capMask
		if len(proc.Capabilities.Ambient) > 0 {
			bounding = currentBounding()
		}
		for _, name := range proc.Capabilities.Ambient {
			c, ok := CapNumber(name)
			if !ok {
				return 0, ExitSetup, fmt.Errorf("ambient capability %q: unknown", name)
			}
			if bounding&(1<<c) == 0 {
				continue
			}
			attr.AmbientCaps = append(attr.AmbientCaps, uintptr(c))
		}
	}
	umask := 0o022
	if proc.User.Umask != nil {
		umask = int(*proc.User.Umask)
	}
	if tr.On() {
		tr.Step("exec", "fork, setsid, setgroups(%v), setgid(%d), setuid(%d), umask %#o, chdir(%q)", attr.Credential.Groups, proc.User.GID, proc.User.UID, umask, proc.Cwd)
		tr.Step("exec", "execve(%q, %q, env=%q)", argv0, proc.Args, proc.Env)
	}
	// umask is per process (fs_struct): set it for the fork only.
	old := syscall.Umask(umask)
	pid, err := syscall.ForkExec(argv0, proc.Args, &syscall.ProcAttr{
		Dir:   proc.Cwd,
		Env:   proc.Env,
		Files: files,
		Sys:   attr,
	})
	syscall.Umask(old)
	if err != nil {
		return 0, execErrorCode(err), fmt.Errorf("exec %q: %w", proc.Args[0], err)
	}
	return pid, 0, nil
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

// waitStart waits for start: on the exec FIFO, or the sync socket, which
// may bring a spec to start with (StartWith).
func waitStart(c *syncConn, cfg *initConfig) ([]byte, error) {
	if cfg.ExecFIFO != "" {
		// Blocks until `start` opens the FIFO for reading.
		f, err := os.OpenFile(cfg.ExecFIFO, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("open exec fifo: %w", err)
		}
		f.Write([]byte{0})
		f.Close()
		return nil, nil
	}
	var m message
	if _, err := c.recvRaw(&m); err != nil {
		return nil, fmt.Errorf("waiting for start: %w", err)
	}
	if m.Type != msgStart {
		return nil, fmt.Errorf("waiting for start: got %q", m.Type)
	}
	return m.Spec, nil
}

// processArgs is spec's process's argv, for the trace.
func processArgs(spec *specs.Spec) []string {
	if spec.Process == nil {
		return nil
	}
	return spec.Process.Args
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
		// syscall.Setrlimit, not prlimit: for RLIMIT_NOFILE it also stops
		// the Go runtime from restoring its start-up soft limit in the
		// children it forks.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Soft, Max: r.Hard}); err != nil {
			var cur unix.Rlimit
			unix.Getrlimit(res, &cur)
			if errors.Is(err, unix.EPERM) && r.Hard > cur.Max {
				return fmt.Errorf("rlimit %s: raising the hard limit from %d to %d needs CAP_SYS_RESOURCE, which this runtime does not have: %w", r.Type, cur.Max, r.Hard, err)
			}
			return fmt.Errorf("rlimit %s (soft %d, hard %d): %w", r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}

// softToHard raises the soft limits of rl back to their hard limits.
func softToHard(rl []specs.POSIXRlimit) {
	for _, r := range rl {
		if res, ok := rlimitByName[r.Type]; ok && r.Soft < r.Hard {
			syscall.Setrlimit(res, &syscall.Rlimit{Cur: r.Hard, Max: r.Hard})
		}
	}
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

// spareEnv marks an init spawned ahead of its container (Config.Spare).
const spareEnv = "CFS_SPARE"

// warmSpecSample reaches the spec types a container's config uses.
const warmSpecSample = `{"ociVersion":"1.0.0","process":{"user":{"uid":0,"gid":0,"additionalGids":[0]},` +
	`"args":["x"],"env":["A=b"],"cwd":"/","capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"],` +
	`"permitted":["CAP_KILL"]},"rlimits":[{"type":"RLIMIT_NOFILE","hard":1,"soft":1}],"noNewPrivileges":true,` +
	`"oomScoreAdj":0},"root":{"path":"/r","readonly":false},"hostname":"h","mounts":[{"destination":"/proc",` +
	`"type":"proc","source":"proc","options":["nosuid"]}],"annotations":{"a":"b"},"linux":{"uidMappings":` +
	`[{"containerID":0,"hostID":1,"size":1}],"sysctl":{"a":"b"},"resources":{"devices":[{"allow":false,` +
	`"type":"c","major":1,"minor":1,"access":"rwm"}],"memory":{"limit":1},"cpu":{"shares":1,"quota":1,` +
	`"period":1,"cpus":"0"},"pids":{"limit":1},"blockIO":{"weight":1}},"cgroupsPath":"/c",` +
	`"namespaces":[{"type":"pid"}],"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,` +
	`"architectures":["SCMP_ARCH_X86_64"],"syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW",` +
	`"args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"}]}]},"maskedPaths":["/p"],"readonlyPaths":["/q"],` +
	`"devices":[{"path":"/dev/x","type":"c","major":1,"minor":1}]}}`

// warmInitConfigSample reaches the types of the configuration message.
const warmInitConfigSample = `{"spec":{},"rootfs":"/r","rootfsMounts":[{"Source":"s","Target":"t",` +
	`"Type":"overlay","Flags":1,"Data":"d"}],"id":"i","bundle":"b","hostPid":1,"controlFd":4,` +
	`"extraFds":[5],"earlyRoot":true,"controlInMessage":true}`

// warmSpecDecoder decodes warmSpecSample and warmInitConfigSample, for
// the decoder's caches.
func warmSpecDecoder() {
	var s specs.Spec
	json.Unmarshal([]byte(warmSpecSample), &s)
	var c initConfig
	json.Unmarshal([]byte(warmInitConfigSample), &c)
}
