package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/ns"
	"github.com/cfs-org/cfs/internal/trace"
)

// Joining namespaces by path (linux.namespaces[].path).
//
// setns(2) affects only the calling thread, and most namespace types can
// be entered by one thread of a multi-threaded process: the network, IPC,
// UTS and cgroup namespaces; the mount namespace once the thread has its
// own fs_struct (unshare(CLONE_FS)); and the PID namespace, which only
// ever applies to the children the thread forks. So the runtime enters
// them on a dedicated, locked thread and forks init from that thread:
// init is born inside them, before its Go runtime starts, with the new
// namespaces of the spec created inside the joined ones by the same
// clone. The thread is never handed back to the Go scheduler; it ends
// with its goroutine.
//
// Two types cannot be joined this way. setns into a user namespace and
// into a time namespace requires a single-threaded caller (the kernel
// returns EINVAL and EUSERS), and every Go process, ours and init alike,
// is multi-threaded before main runs; runc does it in a C constructor that
// runs before the Go runtime. cfs refuses such a spec with a clear error.
//
// A new time namespace (with timeOffsets) is made by init itself:
// unshare(CLONE_NEWTIME) applies to the calling thread's future children,
// its offsets can be written only before the first process enters it, and
// only through /proc/PID/timens_offsets of the thread group leader (there
// is no per-thread file). Init's main thread is its leader and forks every
// process of the container, so init unshares there, writes the offsets,
// and stays in the runtime's time namespace itself.

// nsJoin is a namespace to enter by path.
type nsJoin struct {
	typ  specs.LinuxNamespaceType
	path string
	flag int
	fd   int
}

// joinOrder: mount last, since setns into it changes the thread's root.
var joinOrder = []specs.LinuxNamespaceType{
	specs.IPCNamespace, specs.UTSNamespace, specs.NetworkNamespace, specs.PIDNamespace,
	specs.CgroupNamespace, specs.MountNamespace,
}

var setnsFlag = map[specs.LinuxNamespaceType]int{
	specs.IPCNamespace: unix.CLONE_NEWIPC, specs.UTSNamespace: unix.CLONE_NEWUTS,
	specs.NetworkNamespace: unix.CLONE_NEWNET, specs.PIDNamespace: unix.CLONE_NEWPID,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.MountNamespace: unix.CLONE_NEWNS,
}

// openJoins opens the namespaces of plan.Join, in joining order. The
// caller closes them (closeJoins).
func openJoins(plan ns.Plan) ([]nsJoin, error) {
	for _, t := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.TimeNamespace} {
		if p, ok := plan.Join[t]; ok {
			return nil, fmt.Errorf("joining the %s namespace %s: not supported (setns into a %s namespace needs a single-threaded process, which a Go runtime is not; see README, design notes)", t, p, t)
		}
	}
	var out []nsJoin
	for _, t := range joinOrder {
		p, ok := plan.Join[t]
		if !ok {
			continue
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeJoins(out)
			return nil, fmt.Errorf("open %s namespace %s: %w", t, p, err)
		}
		out = append(out, nsJoin{typ: t, path: p, flag: setnsFlag[t], fd: fd})
	}
	return out, nil
}

func closeJoins(j []nsJoin) {
	for _, x := range j {
		unix.Close(x.fd)
	}
}

// startIn starts cmd from a dedicated thread that first enters joins and,
// with cgDirs (a cgroups.Manager's Paths), the container's cgroup, so that
// cmd is born in all of them (see Config.EarlyCgroup). Without either it
// is cmd.Start.
func startIn(cmd *process, joins []nsJoin, cgDirs map[string]string, tr *trace.Tracer) error {
	if len(joins) == 0 && len(cgDirs) == 0 {
		return cmd.start()
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, in foreign namespaces now, must not
		// run other goroutines; it exits with this one.
		goruntime.LockOSThread()
		errc <- func() error {
			for _, j := range joins {
				if j.typ == specs.MountNamespace {
					if err := unix.Unshare(unix.CLONE_FS); err != nil {
						return fmt.Errorf("unshare(CLONE_FS) to join mount namespace: %w", err)
					}
				}
				tr.Step("setns", "setns(%s, CLONE_NEW%s) on the thread that forks init", j.path, nsFlagName(j.typ))
				if err := unix.Setns(j.fd, j.flag); err != nil {
					return fmt.Errorf("join %s namespace %s: %w", j.typ, j.path, err)
				}
			}
			if len(cgDirs) > 0 {
				fd, leave, err := joinCgroupThread(cgDirs, tr)
				defer leave()
				if err != nil {
					return err
				}
				if fd >= 0 {
					defer unix.Close(fd)
					if cmd.sys == nil {
						cmd.sys = &syscall.SysProcAttr{}
					}
					cmd.sys.UseCgroupFD, cmd.sys.CgroupFD = true, fd
				}
			}
			return cmd.start()
		}()
	}()
	return <-errc
}

// joinCgroupThread moves the calling thread into the v1 cgroups of dirs
// ("0" to tasks: only the calling thread, without the global lock) and
// returns an O_PATH descriptor of the cgroup2 directory for
// CLONE_INTO_CGROUP, or -1, and leave, which moves the thread back where
// it was (the same cheap way): a locked thread that ends with its
// goroutine may be the main thread, which Go keeps, and it must not keep
// the container's cgroup busy. Named v1 hierarchies (name=systemd) and a
// hybrid host's cgroup2 are optional, as in cgroups.New.
func joinCgroupThread(dirs map[string]string, tr *trace.Tracer) (int, func(), error) {
	var back []string
	leave := func() {
		for _, f := range back {
			os.WriteFile(f, []byte("0"), 0)
		}
	}
	// A thread other than the main one ends with the goroutine that
	// locked it (startIn never unlocks): it needs no way back.
	var orig map[string]string
	if unix.Gettid() == unix.Getpid() {
		orig = threadCgroups()
	}
	v2 := dirs["unified"]
	var mounts []cgroupMount
	done := map[string]bool{v2: true}
	for ctrl, dir := range dirs {
		if done[dir] {
			continue
		}
		done[dir] = true
		tr.Step("cgroup", "write %s/tasks = \"0\" (the thread that forks init)", dir)
		if err := os.WriteFile(filepath.Join(dir, "tasks"), []byte("0"), 0); err != nil {
			if strings.HasPrefix(ctrl, "name=") {
				continue
			}
			return -1, leave, fmt.Errorf("join cgroup %s: %w", dir, err)
		}
		// The hierarchy's mount is dir without the container's path; our
		// own cgroup there is orig[ctrl].
		if p, ok := orig[ctrl]; ok {
			if mounts == nil {
				mounts = cgroupMounts()
			}
			if mnt := mountOf(mounts, dir, ctrl); mnt != "" {
				back = append(back, filepath.Join(mnt, p, "tasks"))
			}
		}
	}
	if v2 == "" {
		return -1, leave, nil
	}
	fd, err := unix.Open(v2, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if len(dirs) > 1 { // hybrid: optional
			return -1, leave, nil
		}
		return -1, leave, fmt.Errorf("open cgroup %s: %w", v2, err)
	}
	tr.Step("cgroup", "clone3(CLONE_INTO_CGROUP, %s)", v2)
	return fd, leave, nil
}

// threadCgroups maps each v1 controller of the calling thread to its
// cgroup path (/proc/thread-self/cgroup).
func threadCgroups() map[string]string {
	b, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[1] == "" {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			out[c] = f[2]
		}
	}
	return out
}

// cgroupMount is a v1 cgroup hierarchy's mount point and its options.
type cgroupMount struct {
	point string
	opts  []string
}

// cgroupMounts lists the v1 cgroup mounts of /proc/self/mountinfo.
func cgroupMounts() []cgroupMount {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return []cgroupMount{}
	}
	out := []cgroupMount{}
	for _, line := range strings.Split(string(b), "\n") {
		i := strings.Index(line, " - cgroup ")
		if i < 0 {
			continue
		}
		f := strings.Fields(line[:i])
		opts := strings.Fields(line[i+3:])
		if len(f) < 5 || len(opts) < 3 {
			continue
		}
		out = append(out, cgroupMount{point: f[4], opts: strings.Split(opts[2], ",")})
	}
	return out
}

// mountOf finds the mount point of the v1 hierarchy holding ctrl that dir
// is in: the longest /sys/fs/cgroup-style prefix whose mount lists ctrl.
func mountOf(mounts []cgroupMount, dir, ctrl string) string {
	best := ""
	for _, m := range mounts {
		if slices.Contains(m.opts, ctrl) && strings.HasPrefix(dir, m.point+"/") && len(m.point) > len(best) {
			best = m.point
		}
	}
	return best
}

func nsFlagName(t specs.LinuxNamespaceType) string {
	switch t {
	case specs.MountNamespace:
		return "NS"
	case specs.NetworkNamespace:
		return "NET"
	}
	return strings.ToUpper(string(t))
}

// newTimeNamespace makes the calling thread's children enter a new time
// namespace with offsets (time_namespaces(7)); the calling thread must be
// its process's leader.
func newTimeNamespace(offsets map[string]specs.LinuxTimeOffset, tr *trace.Tracer) error {
	tr.Step("unshare", "unshare(CLONE_NEWTIME), offsets %v", offsets)
	if err := unix.Unshare(unix.CLONE_NEWTIME); err != nil {
		return fmt.Errorf("unshare time namespace: %w", err)
	}
	if len(offsets) == 0 {
		return nil
	}
	var b strings.Builder
	for clock, o := range offsets {
		switch clock {
		case "monotonic", "boottime":
		default:
			return fmt.Errorf("timeOffsets: clock %q: unknown (monotonic or boottime)", clock)
		}
		fmt.Fprintf(&b, "%s %d %d\n", clock, o.Secs, o.Nanosecs)
	}
	if err := os.WriteFile("/proc/self/timens_offsets", []byte(b.String()), 0); err != nil {
		return fmt.Errorf("write time namespace offsets: %w", err)
	}
	return nil
}

// CheckSpec refuses what cfs cannot honour on any host, or on this one,
// before anything is created (config.md: runtimes MUST generate an error
// for values they cannot apply).
func CheckSpec(spec *specs.Spec) error {
	if spec == nil || spec.Linux == nil {
		return fmt.Errorf("spec needs a linux section")
	}
	p, l := spec.Process, spec.Linux
	if p == nil {
		p = &specs.Process{} // OCI: optional until start
	}
	if p.ApparmorProfile != "" {
		return fmt.Errorf("process.apparmorProfile %q: AppArmor is not supported by cfs (host: %s)", p.ApparmorProfile, lsmState("apparmor"))
	}
	if p.SelinuxLabel != "" {
		return fmt.Errorf("process.selinuxLabel %q: SELinux is not supported by cfs (host: %s)", p.SelinuxLabel, lsmState("selinux"))
	}
	if l.MountLabel != "" {
		return fmt.Errorf("linux.mountLabel %q: SELinux is not supported by cfs (host: %s)", l.MountLabel, lsmState("selinux"))
	}
	if l.IntelRdt != nil {
		return fmt.Errorf("linux.intelRdt: not supported")
	}
	if p.Scheduler != nil {
		return fmt.Errorf("process.scheduler: not supported")
	}
	if p.ExecCPUAffinity != nil {
		return fmt.Errorf("process.execCPUAffinity: not supported")
	}
	if l.MemoryPolicy != nil {
		return fmt.Errorf("linux.memoryPolicy: not supported")
	}
	if len(l.NetDevices) > 0 {
		return fmt.Errorf("linux.netDevices: not supported")
	}
	plan, err := ns.PlanFor(l.Namespaces)
	if err != nil {
		return err
	}
	if (len(l.UIDMappings) > 0 || len(l.GIDMappings) > 0) && plan.Clone&ns.NEWUSER == 0 {
		return fmt.Errorf("linux.uidMappings/gidMappings need a new user namespace")
	}
	for _, m := range spec.Mounts {
		if idmap, _ := idmapOf(m); idmap {
			if err := checkIdmappedMount(m, plan.Has(specs.UserNamespace)); err != nil {
				return err
			}
		}
	}
	if len(l.TimeOffsets) > 0 && plan.Clone&ns.NEWTIME == 0 {
		return fmt.Errorf("linux.timeOffsets need a new time namespace")
	}
	if spec.Hostname != "" && !plan.Has(specs.UTSNamespace) {
		// Sharing the host's UTS namespace with its own name is fine
		// (CRI host-network pods carry the node's name).
		if h, _ := os.Hostname(); h != spec.Hostname {
			return fmt.Errorf("hostname %q: needs a UTS namespace", spec.Hostname)
		}
	}
	if l.Sysctl != nil {
		for k := range l.Sysctl {
			if err := checkSysctl(k, plan); err != nil {
				return err
			}
		}
	}
	if p.Capabilities != nil {
		for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted,
			p.Capabilities.Inheritable, p.Capabilities.Ambient} {
			if _, err := capsOf(set); err != nil {
				return fmt.Errorf("process.capabilities: %w", err)
			}
		}
	}
	for _, r := range p.Rlimits {
		if _, ok := rlimitByName[r.Type]; !ok {
			return fmt.Errorf("process.rlimits: %q: unknown", r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits: %s: soft limit %d above hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	if l.Seccomp != nil {
		if _, err := compileSeccomp(l.Seccomp); err != nil {
			return err
		}
	}
	return nil
}

// checkSysctl allows the namespaced sysctls (runc's list): IPC ones with an
// IPC namespace, net.* with a network namespace, kernel.{host,domain}name
// with a UTS namespace.
func checkSysctl(k string, plan ns.Plan) error {
	switch {
	case strings.HasPrefix(k, "fs.mqueue.") || k == "kernel.msgmax" || k == "kernel.msgmnb" || k == "kernel.msgmni" ||
		k == "kernel.sem" || k == "kernel.shmall" || k == "kernel.shmmax" || k == "kernel.shmmni" || k == "kernel.shm_rmid_forced":
		if !plan.Has(specs.IPCNamespace) {
			return fmt.Errorf("sysctl %q: needs an IPC namespace", k)
		}
	case strings.HasPrefix(k, "net."):
		if !plan.Has(specs.NetworkNamespace) {
			return fmt.Errorf("sysctl %q: needs a network namespace", k)
		}
	case k == "kernel.hostname" || k == "kernel.domainname":
		if !plan.Has(specs.UTSNamespace) {
			return fmt.Errorf("sysctl %q: needs a UTS namespace", k)
		}
	default:
		return fmt.Errorf("sysctl %q: not namespaced (it would change the host)", k)
	}
	return nil
}

func lsmState(name string) string {
	switch name {
	case "apparmor":
		if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.TrimSpace(string(b)) == "Y" {
			return "AppArmor is enabled in the kernel"
		}
		return "no AppArmor in the kernel"
	case "selinux":
		if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
			return "SELinux is enabled in the kernel"
		}
		return "no SELinux in the kernel"
	}
	return ""
}
