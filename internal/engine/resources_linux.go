package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/trace"
)

// linuxFacts reads the host for ResourceOptions validation.
type linuxFacts struct{}

func sysFacts() hostFacts { return linuxFacts{} }

func (linuxFacts) cgroupHost() (*cgroups.Host, error) {
	h, err := cgroups.DetectHost()
	if err != nil {
		return nil, err
	}
	return withHiddenNet(hostView(h, false)), nil
}

// withHiddenNet adds to h.Unmounted the net controllers that the kernel
// has in a v1 hierarchy no mount of ours shows: a hierarchy outlives its
// last visible mount while a lazily detached copy (a container's old
// root) still refers to it. Mounting the same controllers again reattaches
// it, so for us it is as good as unmounted. h is copied when changed.
func withHiddenNet(h *cgroups.Host) *cgroups.Host {
	var hidden []string
	for _, c := range netControllers {
		if _, ok := h.Controllers[c]; !ok && !slices.Contains(h.Unmounted, c) && kernelHasController(c) {
			hidden = append(hidden, c)
		}
	}
	if len(hidden) == 0 {
		return h
	}
	n := cloneHost(h)
	n.Unmounted = append(n.Unmounted, hidden...)
	return n
}

// kernelHasController reports whether /proc/cgroups lists the controller
// as enabled.
func kernelHasController(name string) bool {
	b, err := os.ReadFile("/proc/cgroups")
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 4 && f[0] == name {
			return f[3] == "1"
		}
	}
	return false
}

func (linuxFacts) onlineCPUs() (string, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return "", fmt.Errorf("reading the host's CPUs: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (linuxFacts) onlineMems() (string, error) {
	b, err := os.ReadFile("/sys/devices/system/node/online")
	if errors.Is(err, os.ErrNotExist) {
		return "0", nil // a kernel without NUMA has node 0 only
	}
	if err != nil {
		return "", fmt.Errorf("reading the host's memory nodes: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (linuxFacts) blockDevice(path string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, errors.New("not a block device")
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}

// NetCgroupDir is where cfs mounts the cgroup v1 net_cls and net_prio
// controllers when the host's kernel has them but nobody mounted them (the
// development VM; also unified hosts whose kernel keeps the v1 code).
//
// Decision: the hierarchy is mounted on demand, by the first container
// that asks for --net-cls-classid or --net-prio, as one mount holding every
// such controller (/run/cfs/cgroup/net_cls,net_prio); only containers that
// ask for those flags join it (hostView hides it from the others, so they
// pay nothing); and it is unmounted as soon as no cgroup is left in it,
// that is when the last such container exits or is removed
// (releaseNetCgroups). The flock NetCgroupDir/lock orders the mount, the
// creation of a container's cgroup in it, and the unmount, across cfs
// processes. `umount /run/cfs/cgroup/*` removes it by hand (it refuses
// while containers live in it).
const NetCgroupDir = "/run/cfs/cgroup"

var netControllers = []string{"net_cls", "net_prio"}

func isOurs(mount string) bool { return strings.HasPrefix(mount, NetCgroupDir+"/") }

// hostView returns h without the hierarchies cfs mounted under
// NetCgroupDir (unless keepOurs), with Mode worked out without them: our
// net_cls mount must not make a unified host look hybrid to the cgroup
// manager. h itself is returned when nothing changes.
func hostView(h *cgroups.Host, keepOurs bool) *cgroups.Host {
	found := false
	for _, hi := range h.Hierarchies {
		if isOurs(hi.Mount) {
			found = true
		}
	}
	if !found {
		return h
	}
	n := &cgroups.Host{Mode: h.Mode, Controllers: map[string]cgroups.Controller{}, Unified: h.Unified,
		Unmounted: slices.Clone(h.Unmounted)}
	resource := false
	for _, hi := range h.Hierarchies {
		if isOurs(hi.Mount) {
			if !keepOurs {
				for _, c := range hi.Controllers {
					if !slices.Contains(n.Unmounted, c) {
						n.Unmounted = append(n.Unmounted, c)
					}
				}
				continue
			}
		} else if hi.Version == cgroups.V1 {
			for _, c := range hi.Controllers {
				if !strings.HasPrefix(c, "name=") {
					resource = true
				}
			}
		}
		hi.Controllers = slices.Clone(hi.Controllers)
		n.Hierarchies = append(n.Hierarchies, hi)
	}
	for k, c := range h.Controllers {
		if keepOurs || !isOurs(c.Mount) {
			n.Controllers[k] = c
		}
	}
	switch {
	case resource && h.Unified != "":
		n.Mode = cgroups.Hybrid
	case resource:
		n.Mode = cgroups.Legacy
	case h.Unified != "":
		n.Mode = cgroups.Unified
	}
	return n
}

// netControllersFor lists the net controllers a container's resources use.
func netControllersFor(r *specs.LinuxResources) []string {
	if r == nil || r.Network == nil {
		return nil
	}
	var out []string
	if r.Network.ClassID != nil {
		out = append(out, "net_cls")
	}
	if len(r.Network.Priorities) > 0 {
		out = append(out, "net_prio")
	}
	return out
}

// usesNetCgroup reports whether a container with resources r may have
// joined our net_cls/net_prio hierarchy (so its end should try to release
// it).
func usesNetCgroup(r *specs.LinuxResources) bool { return len(netControllersFor(r)) > 0 }

// cgroupHostFor returns the cgroup layout a new container with resources r
// joins (runtime.Config.CgroupHost). When r needs net_cls or net_prio and
// the host has not mounted them, it mounts our hierarchy (see NetCgroupDir)
// and returns holding its lock: the caller calls unlock once the
// container's cgroup exists (runtime.Create returned), so that no
// releaseNetCgroups unmounts the hierarchy in between.
func cgroupHostFor(r *specs.LinuxResources, tr *trace.Tracer) (host *cgroups.Host, unlock func(), err error) {
	h, err := cgroups.DetectHost()
	if err != nil {
		return nil, nil, err
	}
	hostHas := func(c string) bool {
		ctl, ok := h.Controllers[c]
		return ok && ctl.Version == cgroups.V1 && !isOurs(ctl.Mount)
	}
	need := false
	for _, c := range netControllersFor(r) {
		if !hostHas(c) {
			need = true
		}
	}
	if !need {
		return hostView(h, false), func() {}, nil
	}
	unlock, err = lockNetCgroups()
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			unlock()
		}
	}()
	base := withHiddenNet(hostView(h, false))
	var ctrls []string // one mount for all of them, whatever r asks
	for _, c := range netControllers {
		if !hostHas(c) && slices.Contains(base.Unmounted, c) {
			ctrls = append(ctrls, c)
		}
	}
	target := filepath.Join(NetCgroupDir, strings.Join(ctrls, ","))
	if isCgroupMount(target) {
		// Mounted by an earlier container, maybe in another process.
		n := cloneHost(base)
		n.Hierarchies = append(n.Hierarchies, cgroups.Hierarchy{Version: cgroups.V1, Mount: target, Root: "/", Controllers: ctrls})
		for _, c := range ctrls {
			n.Controllers[c] = cgroups.Controller{Version: cgroups.V1, Mount: target}
		}
		n.Unmounted = slices.DeleteFunc(n.Unmounted, func(c string) bool { return slices.Contains(ctrls, c) })
		return n, unlock, nil
	}
	n, err := cgroups.MountV1Controllers(base, NetCgroupDir, ctrls, tr)
	if err != nil {
		return nil, nil, err
	}
	// MountV1Controllers calls a unified host with a v1 mount hybrid; to
	// the cgroup manager our mount is only an extra hierarchy.
	n.Mode = base.Mode
	return n, unlock, nil
}

func cloneHost(h *cgroups.Host) *cgroups.Host {
	n := &cgroups.Host{Mode: h.Mode, Controllers: make(map[string]cgroups.Controller, len(h.Controllers)+2),
		Hierarchies: slices.Clone(h.Hierarchies), Unified: h.Unified, Unmounted: slices.Clone(h.Unmounted)}
	for k, v := range h.Controllers {
		n.Controllers[k] = v
	}
	return n
}

// lockNetCgroups takes the flock that orders mounting, joining and
// unmounting our net hierarchy. The descriptor is close-on-exec, so no
// container init inherits it.
func lockNetCgroups() (func(), error) {
	if err := os.MkdirAll(NetCgroupDir, 0o700); err != nil {
		return nil, fmt.Errorf("net cgroup lock: %w", err)
	}
	fd, err := unix.Open(filepath.Join(NetCgroupDir, "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("net cgroup lock: %w", err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("net cgroup lock: %w", err)
	}
	return func() { unix.Close(fd) }, nil
}

func isCgroupMount(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC
}

// releaseNetCgroups unmounts our net_cls/net_prio hierarchy once no
// container uses it: it removes the empty cgroups left in it (cgroups with
// processes or children refuse rmdir and keep it mounted) and unmounts
// when none is left. Best effort: a failure leaves the mount for the next
// container's end. It costs one ReadDir when nothing was mounted.
func releaseNetCgroups(tr *trace.Tracer) {
	ents, err := os.ReadDir(NetCgroupDir)
	if err != nil || !slices.ContainsFunc(ents, func(e os.DirEntry) bool { return e.IsDir() }) {
		return
	}
	unlock, err := lockNetCgroups()
	if err != nil {
		return
	}
	defer unlock()
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		target := filepath.Join(NetCgroupDir, e.Name())
		if isCgroupMount(target) {
			if !pruneEmptyCgroups(target, tr) {
				continue
			}
			// Removed cgroups are freed asynchronously; unmounted before
			// that, the hierarchy would live on in the kernel, unmounted
			// (and listed in every process's /proc/PID/cgroup).
			waitHierarchyEmpty("net_cls", time.Second)
			tr.Step("cgroup", "umount %s (no container uses it any more)", target)
			if err := unix.Unmount(target, 0); err != nil {
				tr.Step("cgroup", "umount %s: %v", target, err)
				continue
			}
		}
		unix.Rmdir(target)
	}
}

// pruneEmptyCgroups removes, deepest first, the cgroups below dir that
// have neither processes nor children, and reports whether none is left.
func pruneEmptyCgroups(dir string, tr *trace.Tracer) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	empty := true
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		if pruneEmptyCgroups(sub, tr) {
			tr.Step("cgroup", "rmdir %s", sub)
			if unix.Rmdir(sub) == nil {
				continue
			}
		}
		empty = false
	}
	return empty
}

// waitHierarchyEmpty waits until the hierarchy holding controller has only
// its root cgroup left (/proc/cgroups, num_cgroups), or d passes.
func waitHierarchyEmpty(controller string, d time.Duration) {
	deadline := time.Now().Add(d)
	for {
		b, err := os.ReadFile("/proc/cgroups")
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[0] == controller && f[2] == "1" {
				return
			}
		}
		if time.Now().After(deadline) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
