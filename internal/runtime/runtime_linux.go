package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/ns"
	"github.com/cfs-org/cfs/internal/trace"
)

// Config is everything the runtime needs to create a container.
type Config struct {
	ID   string
	Spec *specs.Spec
	// SpecJSON, when set, is Spec already encoded (saves encoding it again).
	SpecJSON []byte
	// Rootfs is the absolute host path of the container's root directory.
	Rootfs string
	// RootfsMounts, when set, are mounted onto Rootfs inside the
	// container's mount namespace (the engine's overlay), so they vanish
	// with the container and never show on the host.
	RootfsMounts []mount.Mount
	// Stdio of the init and so of the user's program; nil means /dev/null.
	// Ignored for the program when Spec.Process.Terminal is set (a pty).
	Stdin, Stdout, Stderr *os.File
	Tracer                *trace.Tracer
	// ExecFIFO makes init wait on a FIFO for start (see initConfig).
	ExecFIFO string
	// ExitWithParent makes init exit when the process that created it
	// goes away before start (the engine's containers; OCI create leaves
	// it false, as its process exits before start).
	ExitWithParent bool
	// CgroupHost is the cgroup layout to join; nil means
	// cgroups.DetectHost(). The engine passes a view without the
	// hierarchies a container does not need (its own net_cls mount).
	CgroupHost *cgroups.Host
	// Bundle is the OCI bundle directory: relative bind sources resolve
	// against it and hooks get it in the state. Empty means the directory
	// above Rootfs.
	Bundle string
	// Control, when set, is a listening SOCK_SEQPACKET unix socket that
	// init serves once the root filesystem is ready: `start` from another
	// process (instead of Start or ExecFIFO) and exec (control_linux.go).
	// Spawn passes it to init; the caller keeps its own copy.
	Control *os.File
	// ExtraFiles become the program's descriptors 3, 4, ... (OCI
	// --preserve-fds, socket activation).
	ExtraFiles []*os.File
	// NoPivot roots the container with MS_MOVE and chroot instead of
	// pivot_root (for a rootfs on ramfs).
	NoPivot bool
	// EarlyCgroup: Spawn creates the cgroup and forks init inside it, in
	// every hierarchy the memory one included, instead of Setup moving
	// init there. Moving a process between cgroups takes the kernel's
	// cgroup_threadgroup_rwsem for writing, which waits for an RCU grace
	// period (10-15 ms on the development VM) unless the mover is the
	// thread itself: the thread that forks init joins with "0" written to
	// each v1 hierarchy's tasks file (cgroup-v1.rst; the kernel skips the
	// global lock for the calling thread) and clone3(CLONE_INTO_CGROUP)
	// for cgroup2. Init's own start-up memory is then charged to the
	// container (a few MiB), which the engine avoids for tiny --memory.
	EarlyCgroup bool
	// FastStart gives init two Ps while it sets up, so that its signal
	// subscriptions (a round trip with the Go runtime's signal thread per
	// signal) and the spec's decoding run beside its mounts: about 0.7 ms
	// sooner to start, for about 0.5 MiB more PSS for the init's whole
	// life. For foreground containers; detached ones, which may be
	// thousands, keep the smaller init.
	FastStart bool
	// Spare: init is spawned ahead of its container, which Setup's cfg
	// describes once there is one: the container's ID, its cgroup and
	// its namespaces must be this cfg's; its Control may come only with
	// Setup's cfg (in the config message). Init builds its spec decoder
	// while it waits.
	Spare bool
}

// InitPath, when set, returns the executable that Spawn starts as a
// container's init (cmd/cfs sets internal/initbin's lean one); it or an
// empty result means this binary, which must then call Init when its
// argv[1] is InitArg.
var InitPath func() string

func initBinary() string {
	if InitPath != nil {
		if p := InitPath(); p != "" {
			return p
		}
	}
	return "/proc/self/exe"
}

// Container is a created (or started) container seen from its parent.
type Container struct {
	ID     string
	Pid    int // init's pid on the host
	proc   *process
	sync   *syncConn
	cg     cgroups.Manager
	tr     *trace.Tracer
	pty    *os.File
	plan   ns.Plan
	waited bool
	status int
	// Descriptor numbers in init (see initConfig).
	traceFD, controlFD int
	extraFDs           []int
	// early: init was born in its cgroup (Config.EarlyCgroup);
	// lateMemory: except in the memory hierarchy, joined at ready.
	lateMemory bool
	// early: init was born in its cgroup (Config.EarlyCgroup).
	early bool
}

// Create starts the container's init in new namespaces and a new cgroup,
// and returns once the root filesystem is ready and init waits for Start.
// On error nothing is left: no process, no cgroup.
func Create(cfg *Config) (*Container, error) {
	c, err := Spawn(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Setup(cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Spawn starts the container's init in its new namespaces, where it waits
// for its configuration. Starting a Go binary in new namespaces takes a few
// milliseconds; the caller prepares the root filesystem meanwhile and then
// calls Setup. Only Spec's namespaces, id maps and process.terminal, and
// the stdio and tracer of cfg are used here. If Setup is never called,
// Destroy must be.
func Spawn(cfg *Config) (_ *Container, err error) {
	spec := cfg.Spec
	if spec == nil || spec.Linux == nil || (spec.Process == nil && cfg.Control == nil) {
		return nil, errors.New("spec needs linux and process sections")
	}
	if err := CheckSpec(spec); err != nil {
		return nil, err
	}
	plan, err := ns.PlanFor(spec.Linux.Namespaces)
	if err != nil {
		return nil, err
	}
	joins, err := openJoins(plan)
	if err != nil {
		return nil, err
	}
	defer closeJoins(joins)
	tr := cfg.Tracer
	c := &Container{ID: cfg.ID, tr: tr, plan: plan}
	parent, child, err := newSyncPair()
	if err != nil {
		return nil, err
	}
	c.sync = parent
	defer func() {
		if err != nil {
			c.kill()
			if c.cg != nil { // EarlyCgroup made it
				c.cg.Destroy()
			}
		}
	}()
	bin := initBinary()
	cmd := &process{path: bin, args: []string{bin, InitArg}}
	// Init drops to one P once the program runs (see Init); a foreground
	// container's may set up with two (Config.FastStart).
	procs := "1"
	if cfg.FastStart {
		procs = "2"
	}
	cmd.env = []string{"GOMAXPROCS=" + procs}
	if cfg.Spare {
		cmd.env = append(cmd.env, spareEnv+"=1")
	}
	cmd.files = []*os.File{cfg.Stdin, cfg.Stdout, cfg.Stderr, child}
	// Extra files start at descriptor 3 in init.
	add := func(f *os.File) int {
		cmd.files = append(cmd.files, f)
		return len(cmd.files) - 1
	}
	c.traceFD, c.controlFD = -1, -1
	if tr.On() {
		if f, ok := tr.Writer().(*os.File); ok {
			c.traceFD = add(f)
		}
	}
	if cfg.Control != nil {
		c.controlFD = add(cfg.Control)
	}
	for _, f := range cfg.ExtraFiles {
		c.extraFDs = append(c.extraFDs, add(f))
	}
	// The cgroup namespace is unshared by init once it is in its cgroup:
	// created here it would be rooted in ours. A new time namespace is
	// made by init for its children (newTimeNamespace), where its offsets
	// can still be written.
	clone := plan.Clone &^ (ns.NEWCGROUP | ns.NEWTIME)
	cmd.sys = &syscall.SysProcAttr{Cloneflags: clone}
	if clone&ns.NEWUSER != 0 {
		cmd.sys.UidMappings = idMaps(spec.Linux.UIDMappings)
		cmd.sys.GidMappings = idMaps(spec.Linux.GIDMappings)
		cmd.sys.GidMappingsEnableSetgroups = true
		// Become the namespace's root once the maps are written: our host
		// uid 0 is not mapped, and an unmapped uid would exec without
		// capabilities.
		cmd.sys.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	if tr.On() {
		tr.Step("clone", "exec %s as the container's init with %s", bin, ns.FlagString(clone))
		for _, m := range spec.Linux.UIDMappings {
			tr.Step("userns", "uid_map: container %d -> host %d (%d ids)", m.ContainerID, m.HostID, m.Size)
		}
		for _, m := range spec.Linux.GIDMappings {
			tr.Step("userns", "gid_map: container %d -> host %d (%d ids)", m.ContainerID, m.HostID, m.Size)
		}
	}
	var cgDirs map[string]string
	if cfg.EarlyCgroup {
		if c.cg, err = makeCgroup(cfg); err != nil {
			child.Close()
			return nil, err
		}
		c.early = true
		cgDirs = c.cg.Paths()
		if MemoryLimited(spec) {
			// A memory limit should not count init's own start-up: the
			// memory hierarchy is joined in Setup, once init is ready
			// (on cgroup v2, where one directory holds every
			// controller, that means the whole cgroup).
			if mem, ok := cgDirs["memory"]; ok {
				if mem == cgDirs["unified"] {
					cgDirs, c.early = nil, false
				} else {
					delete(cgDirs, "memory")
					c.lateMemory = true
				}
			}
		}
	}
	err = startIn(cmd, joins, cgDirs, tr)
	child.Close()
	if err != nil {
		return nil, fmt.Errorf("start container init: %w", err)
	}
	c.proc = cmd
	c.Pid = cmd.pid
	return c, nil
}

// Setup makes the container's cgroup, sends init its configuration and
// returns once init has built the root filesystem and waits for Start. On
// error the container is destroyed (no process, no cgroup left).
func (c *Container) Setup(cfg *Config) (err error) {
	spec, tr := cfg.Spec, c.tr
	defer func() {
		if err != nil {
			c.Destroy()
		}
	}()
	if c.cg == nil {
		if c.cg, err = makeCgroup(cfg); err != nil {
			return err
		}
	}
	specJSON := cfg.SpecJSON
	if specJSON == nil {
		if specJSON, err = json.Marshal(spec); err != nil {
			return fmt.Errorf("encode spec: %w", err)
		}
	}
	bundle := cfg.Bundle
	if bundle == "" {
		bundle = filepath.Dir(cfg.Rootfs)
	}
	parentHooks := len(HooksOf(spec, HookPrestart))+len(HooksOf(spec, HookCreateRuntime)) > 0
	var specFDs []int
	specFD := len(specJSON) > specInMessage
	if specFD {
		f, err := stateFile(specJSON)
		if err != nil {
			return fmt.Errorf("spec for init: %w", err)
		}
		defer f.Close()
		specFDs, specJSON = []int{int(f.Fd())}, nil
	}
	controlInMessage := cfg.Control != nil && c.controlFD < 0
	if controlInMessage {
		specFDs = append(specFDs, int(cfg.Control.Fd()))
	}
	if err := c.sync.send(initConfig{
		SpecJSON: specJSON, SpecFD: specFD, Rootfs: cfg.Rootfs, RootfsMounts: cfg.RootfsMounts,
		Trace: tr.On(), TraceStart: tr.Start().UnixNano(), ExecFIFO: cfg.ExecFIFO, ExitWithParent: cfg.ExitWithParent,
		ID: cfg.ID, Bundle: bundle, HostPid: c.Pid, TraceFD: c.traceFD, ControlFD: c.controlFD,
		ExtraFDs: c.extraFDs, ParentHooks: parentHooks, NoPivot: cfg.NoPivot,
		EarlyRoot: earlyRoot(spec, c.plan, cfg.RootfsMounts), ControlInMessage: controlInMessage,
	}, specFDs...); err != nil {
		return fmt.Errorf("send config to init: %w", err)
	}
	if c.plan.Clone&ns.NEWUSER != 0 && len(cfg.RootfsMounts) > 0 {
		if err := sendIdmappedLayers(c.sync, c.Pid, cfg.RootfsMounts, tr); err != nil {
			return err
		}
	}
	if hasIdmappedMounts(spec) {
		if err := sendIdmappedMounts(c.sync, c.Pid, spec, bundle, tr); err != nil {
			return err
		}
	}
	// Joining the cgroup runs while init builds the root filesystem; the
	// memory hierarchy waits until init is ready, so that init's start-up
	// memory stays charged outside the container (`--memory 1m` works).
	if !c.early {
		if err := c.cg.AddSome(c.Pid, false); err != nil {
			return err
		}
	}
	for {
		m, fds, err := c.recv()
		if err != nil {
			return err
		}
		switch m.Type {
		case msgPty:
			if len(fds) != 1 {
				return errors.New("init sent no pty master")
			}
			// The name is what runc's console socket payload carries.
			c.pty = os.NewFile(uintptr(fds[0]), "/dev/ptmx")
			continue
		case msgHooks:
			// Namespaces and mounts exist, pivot_root has not happened:
			// prestart (deprecated, state "created" as the conformance
			// suite expects) then createRuntime, in our namespaces.
			st := &specs.State{Version: specs.Version, ID: cfg.ID, Status: specs.StateCreated, Pid: c.Pid,
				Bundle: bundle, Annotations: spec.Annotations}
			if err := RunHooks(HookPrestart, HooksOf(spec, HookPrestart), st, tr); err != nil {
				return err
			}
			st.Status = specs.StateCreating
			if err := RunHooks(HookCreateRuntime, HooksOf(spec, HookCreateRuntime), st, tr); err != nil {
				return err
			}
			if err := c.sync.send(message{Type: msgResume}); err != nil {
				return fmt.Errorf("resume init after hooks: %w", err)
			}
			continue
		case msgReady:
			if !c.early || c.lateMemory {
				if err := c.cg.AddSome(c.Pid, true); err != nil {
					return err
				}
			}
			if spec.Linux.Resources != nil {
				if err := c.cg.Set(WithInitTasks(withDefaultDeviceRules(spec.Linux.Resources), c.Pid)); err != nil {
					return err
				}
			}
			// Init unshares its cgroup namespace now.
			if err := c.sync.send(message{Type: msgResume}); err != nil {
				return fmt.Errorf("resume init: %w", err)
			}
			return nil
		default:
			return fmt.Errorf("init: unexpected message %q", m.Type)
		}
	}
}

// recv reads the next message from init, turning an error report or a
// vanished init into an error.
func (c *Container) recv() (message, []int, error) {
	var m message
	fds, err := c.sync.recvRaw(&m)
	if err != nil {
		if errors.Is(err, errPeerClosed) || errors.Is(err, unix.ECONNRESET) {
			code, _ := c.Wait()
			return m, nil, &InitError{Msg: fmt.Sprintf("container init exited (status %d) before it was ready", code), Code: ExitSetup}
		}
		return m, nil, fmt.Errorf("read from init: %w", err)
	}
	if m.Type == msgError {
		c.Wait()
		return m, nil, &InitError{Msg: m.Error, Code: m.Code}
	}
	return m, fds, nil
}

// Pty returns the pty master when the process has a terminal.
func (c *Container) Pty() *os.File { return c.pty }

// Cgroup returns the container's cgroup manager.
func (c *Container) Cgroup() cgroups.Manager { return c.cg }

// Start lets init run the user's program and returns its pid once it is
// exec'd, or the exec error (exit code 126/127 in an InitError).
func (c *Container) Start() (int, error) {
	return c.StartWith(nil)
}

// StartWith is Start with spec (JSON) replacing the spec init was set up
// with, for everything it does from start on: the process above all. The
// caller makes sure that nothing init did before start (namespaces,
// mounts, hostname, devices, sysctls) depends on what differs.
func (c *Container) StartWith(spec []byte) (int, error) {
	if err := c.sync.send(message{Type: msgStart, Spec: spec}); err != nil {
		return 0, fmt.Errorf("send start to init: %w", err)
	}
	m, _, err := c.recv()
	if err != nil {
		return 0, err
	}
	if m.Type != msgStarted {
		return 0, fmt.Errorf("init: unexpected message %q", m.Type)
	}
	c.sync.close()
	// The user's program, forked with init's score, is now the OOM
	// killer's choice in the container's memory cgroup: init (a Go
	// process, larger than a small limit) must not be, or a --memory 4m
	// container would lose its init instead of its memory hog. Not
	// earlier: the program would inherit the score. Written from the host
	// because lowering a score needs CAP_SYS_RESOURCE in the initial user
	// namespace; without it (some sandboxes drop it) init keeps its score.
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/oom_score_adj", c.Pid), []byte("-1000"), 0); err != nil {
		c.tr.Step("oom", "init keeps its OOM score: %v", err)
	}
	return m.Pid, nil
}

// Signal sends sig to init, which forwards it to the user's program.
func (c *Container) Signal(sig syscall.Signal) error {
	return unix.Kill(c.Pid, sig)
}

// Wait waits for init to exit and returns the container's exit code: the
// program's status, or 128+n when init itself was killed by signal n.
func (c *Container) Wait() (int, error) {
	if c.waited || c.proc == nil {
		return c.status, nil
	}
	c.waited = true
	awaitExit(c.Pid)
	ws, err := c.proc.wait()
	switch {
	case err != nil:
		return c.status, err
	case ws.Signaled():
		c.status = 128 + int(ws.Signal())
	default:
		c.status = ws.ExitStatus()
	}
	return c.status, nil
}

// awaitExit returns once the child pid has exited (not reaped), parking
// the goroutine in the Go runtime's poller on a pidfd. os/exec's Wait
// blocks an OS thread in waitid(2) instead: one thread per running
// container in the supervisor, about 20 KiB each. Any error (no pidfd
// support) leaves the wait to Wait.
func awaitExit(pid int) {
	fd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
		// Not exited yet: Linux leaves si_signo 0 (SIGCHLD once it
		// has). Then wait until the pidfd is readable.
		return err != nil || info.Signo == int32(unix.SIGCHLD)
	})
}

func (c *Container) kill() {
	if c.proc != nil && !c.waited {
		unix.Kill(c.Pid, unix.SIGKILL) // our unreaped child: the pid is its own
		c.Wait()
	}
	if c.sync != nil {
		c.sync.close()
	}
	if c.pty != nil {
		c.pty.Close()
	}
}

// Destroy kills whatever is left of the container and removes its cgroup.
func (c *Container) Destroy() error {
	c.kill()
	if c.cg == nil {
		return nil
	}
	return c.cg.Destroy()
}

func idMaps(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// WithInitTasks returns r with the pids limit raised by the number of
// threads of the container's init (pid) plus initTaskSlack: the pids
// controller counts them, but the limit is meant for the program
// (Docker's --pids-limit counts runc's init, which has become the
// program). A Go init has 6 to 8 threads on the development VM; without
// this, `--pids-limit 8` leaves the program one task and `--pids-limit 4`
// kills init, which cannot make the threads the Go runtime needs. The
// slack covers threads the Go runtime adds later, so that a fork bomb at
// the limit does not kill init; the program may use it too. r is returned
// unchanged when it has no pids limit.
func WithInitTasks(r *specs.LinuxResources, pid int) *specs.LinuxResources {
	if r == nil || r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit <= 0 {
		return r
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return r
	}
	c, p := *r, *r.Pids
	l := *p.Limit + int64(len(tasks)) + initTaskSlack
	p.Limit, c.Pids = &l, &p
	return &c
}

const initTaskSlack = 2

// defaultDeviceRules allow the nodes every container gets (defaultDevices
// and /dev/ptmx, /dev/pts/*) when the spec restricts devices: appended
// after the spec's own rules, so those keep their order (the conformance
// suite reads devices.list back in order) and a leading deny-all does not
// lock the container out of /dev/null.
var defaultDeviceRules = func() []specs.LinuxDeviceCgroup {
	i := func(v int64) *int64 { return &v }
	var r []specs.LinuxDeviceCgroup
	for _, d := range defaultDevices {
		r = append(r, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: i(d.Major), Minor: i(d.Minor), Access: "rwm"})
	}
	return append(r,
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i(5), Minor: i(2), Access: "rwm"},  // /dev/ptmx
		specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i(136), Minor: nil, Access: "rwm"}, // /dev/pts/*
	)
}()

func withDefaultDeviceRules(r *specs.LinuxResources) *specs.LinuxResources {
	if r == nil || len(r.Devices) == 0 {
		return r
	}
	c := *r
	c.Devices = append(append([]specs.LinuxDeviceCgroup{}, r.Devices...), defaultDeviceRules...)
	return &c
}

// makeCgroup creates the container's cgroup (cfg.Spec's cgroupsPath, or
// /cfs/<id>) in every hierarchy of cfg.CgroupHost or the detected host.
func makeCgroup(cfg *Config) (cgroups.Manager, error) {
	host := cfg.CgroupHost
	if host == nil {
		var err error
		if host, err = cgroups.DetectHost(); err != nil {
			return nil, fmt.Errorf("detect cgroup layout: %w", err)
		}
	}
	cgPath := cfg.Spec.Linux.CgroupsPath
	if cgPath == "" {
		cgPath = "/cfs/" + cfg.ID
	}
	cg, err := cgroups.New(host, cgPath, cfg.Tracer)
	if err != nil {
		return nil, err
	}
	if err := cg.Create(); err != nil {
		cg.Destroy()
		return nil, err
	}
	return cg, nil
}

// MemoryLimited reports whether spec limits memory (then init joins the
// memory cgroup late: see Config.EarlyCgroup).
func MemoryLimited(spec *specs.Spec) bool {
	r := spec.Linux.Resources
	return r != nil && r.Memory != nil && ((r.Memory.Limit != nil && *r.Memory.Limit > 0) ||
		(r.Memory.Swap != nil && *r.Memory.Swap > 0) || (r.Memory.Reservation != nil && *r.Memory.Reservation > 0))
}

// earlyRoot reports whether init may mount the root filesystem before it
// has decoded the spec (initConfig.EarlyRoot).
func earlyRoot(spec *specs.Spec, plan ns.Plan, rootfsMounts []mount.Mount) bool {
	if len(rootfsMounts) == 0 || !plan.Has(specs.MountNamespace) || plan.Has(specs.UserNamespace) {
		return false
	}
	p, err := rootPropagation(spec)
	return err == nil && p&unix.MS_SHARED == 0
}

// process is a container's init as its parent starts it, with
// syscall.StartProcess: os/exec first checks, once in every process, that
// pidfds work (three system calls and a throw-away vfork child: 0.15 ms of
// each cfs run, which starts one init).
type process struct {
	path      string
	args, env []string
	files     []*os.File // stdin, stdout, stderr (nil: /dev/null), then init's extra descriptors
	sys       *syscall.SysProcAttr
	pid       int
}

// start starts the process; the calling thread's namespaces, cgroups and
// sys (CLONE_INTO_CGROUP) are the child's.
func (p *process) start() error {
	fds := make([]uintptr, len(p.files))
	var null *os.File
	for i, f := range p.files {
		if f == nil {
			if null == nil {
				var err error
				if null, err = os.Open(os.DevNull); err != nil {
					return err
				}
				defer null.Close()
			}
			f = null
		}
		fds[i] = f.Fd()
	}
	pid, _, err := syscall.StartProcess(p.path, p.args, &syscall.ProcAttr{Env: p.env, Files: fds, Sys: p.sys})
	if err != nil {
		return &os.PathError{Op: "fork/exec", Path: p.path, Err: err}
	}
	p.pid = pid
	return nil
}

// wait reaps the process.
func (p *process) wait() (syscall.WaitStatus, error) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(p.pid, &ws, 0, nil)
		if err != syscall.EINTR {
			return ws, err
		}
	}
}
