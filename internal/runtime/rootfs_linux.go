package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/ns"
	"github.com/cfs-org/cfs/internal/trace"
)

// defaultDevices are the nodes every container gets (runtime-spec
// "Default Devices"), all mode 0666, root-owned.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// mountRootfs builds the container's root in our private mount namespace:
// propagation, the rootfs itself, the spec's mounts, device nodes and /dev
// links. finishRootfs then pivots into it. Hooks that must run before
// pivot_root (prestart, createRuntime, createContainer) run in between.
func mountRootfs(c *syncConn, cfg *initConfig, plan ns.Plan, tr *trace.Tracer) error {
	spec := cfg.Spec
	unix.Umask(0)
	defer unix.Umask(0o022)
	root := cfg.Rootfs
	if plan.Has(specs.MountNamespace) {
		if err := prepareRoot(c, cfg, plan, tr); err != nil {
			return err
		}
	} else {
		// No mount namespace: the container shares the runtime's. Nothing
		// may be made private or slave (that would change the host's
		// mounts); the spec's mounts are made in the host's namespace
		// (delete removes them) and finishRootfs uses chroot.
		tr.Step("mount", "no mount namespace: mounts go to the runtime's namespace, chroot instead of pivot_root")
	}

	userns := plan.Has(specs.UserNamespace)
	var idmapped []int // detached idmapped mounts, in spec order
	if hasIdmappedMounts(spec) {
		var err error
		if idmapped, err = recvIdmappedMounts(c); err != nil {
			return err
		}
		defer func() {
			for _, fd := range idmapped {
				unix.Close(fd)
			}
		}()
	}
	next := 0
	devMounted := false
	for _, sm := range spec.Mounts {
		m, err := mount.FromSpec(sm)
		if err != nil {
			return err
		}
		if m.Type == "cgroup" || m.Type == "cgroup2" {
			if err := mountCgroup(root, m, tr); err != nil {
				return err
			}
			continue
		}
		if m.IsBind() && !filepath.IsAbs(m.Source) {
			m.Source = filepath.Join(cfg.bundleDir(), m.Source)
		}
		if idmap, _ := idmapOf(sm); idmap {
			if next >= len(idmapped) {
				return fmt.Errorf("mount %s: init got %d idmapped mounts, needs more", sm.Destination, len(idmapped))
			}
			m.DetachedFD = idmapped[next]
			next++
		}
		err = mount.MountIn(root, m, tr)
		if err != nil && m.Type == "sysfs" && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
			// A user namespace that does not own the network namespace
			// may not mount sysfs; bind the host's, read-only (as runc).
			m = mount.Mount{Source: "/sys", Target: m.Target, Flags: m.Flags | mount.BIND | mount.REC}
			err = mount.MountIn(root, m, tr)
		}
		if err != nil {
			return err
		}
		if m.Target == "/dev" {
			devMounted = true
		}
	}
	if err := createDevices(root, spec, userns, tr); err != nil {
		return err
	}
	if devMounted {
		if err := devLinks(root, spec.Process != nil && spec.Process.Terminal, tr); err != nil {
			return err
		}
	}
	return nil
}

// finishRootfs pivots into the root mountRootfs built, then masks paths,
// makes paths read-only, writes sysctls and, if asked, remounts the root
// read-only.
func finishRootfs(cfg *initConfig, plan ns.Plan, tr *trace.Tracer) error {
	spec, root := cfg.Spec, cfg.Rootfs
	unix.Umask(0)
	defer unix.Umask(0o022)
	switch {
	case !plan.Has(specs.MountNamespace):
		tr.Step("pivot", "chroot(%q) (no mount namespace)", root)
		if err := unix.Chdir(root); err != nil {
			return fmt.Errorf("chdir to new root %q: %w", root, err)
		}
		if err := unix.Chroot("."); err != nil {
			return fmt.Errorf("chroot %q: %w", root, err)
		}
		if err := unix.Chdir("/"); err != nil {
			return err
		}
	case cfg.NoPivot:
		if err := moveRoot(root, tr); err != nil {
			return err
		}
	default:
		if err := mount.PivotRoot(root, tr); err != nil {
			return err
		}
		if p, _ := rootPropagation(spec); p != 0 {
			tr.Step("mount", "make / %s (rootfsPropagation)", mount.FlagString(p))
			if err := unix.Mount("", "/", "", p, ""); err != nil {
				return fmt.Errorf("set rootfsPropagation %s: %w", spec.Linux.RootfsPropagation, err)
			}
		}
	}
	// Sysctls first: /proc/sys is usually one of the read-only paths.
	for k, v := range spec.Linux.Sysctl {
		if err := writeSysctl(k, v, tr); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := mount.ReadonlyPath(p, tr); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := mount.MaskPath(p, tr); err != nil {
			return err
		}
	}
	if spec.Root != nil && spec.Root.Readonly {
		tr.Step("mount", "remount / read-only")
		flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
		var st unix.Statfs_t
		if unix.Statfs("/", &st) == nil {
			flags |= uintptr(st.Flags) & (mount.NOSUID | mount.NODEV | mount.NOEXEC)
		}
		if err := unix.Mount("", "/", "", flags, ""); err != nil {
			return fmt.Errorf("remount / read-only: %w", err)
		}
	}
	return nil
}

// prepareRoot sets up propagation and makes the root a mount point:
// first / becomes rslave (rshared if the spec asks for shared
// propagation, so that the root can be a peer of the host's mounts), so
// nothing we mount propagates to the host; the parent of the rootfs is made
// private if it is shared (pivot_root refuses shared parents); then the
// rootfs is bound onto itself (or the engine's overlay mounted there).
// The spec's rootfsPropagation is applied to the new / after pivot_root
// (finishRootfs): applied here, "unbindable" would make the bind below
// fail.
func prepareRoot(c *syncConn, cfg *initConfig, plan ns.Plan, tr *trace.Tracer) error {
	root := cfg.Rootfs
	want, err := rootPropagation(cfg.Spec)
	if err != nil {
		return err
	}
	if !cfg.EarlyRoot { // else done by mountEarlyRoot
		prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
		if want&unix.MS_SHARED != 0 {
			prop = unix.MS_SHARED | unix.MS_REC
		}
		if err := makeRootPropagation(prop, tr); err != nil {
			return err
		}
		if prop&unix.MS_SHARED != 0 {
			if err := parentMountPrivate(root, tr); err != nil {
				return err
			}
		}
		if len(cfg.RootfsMounts) == 0 {
			// pivot_root needs the new root to be a mount point.
			if err := mount.Do(mount.Mount{Source: root, Target: root, Flags: mount.BIND | mount.REC}, tr); err != nil {
				return err
			}
		}
		rootfsMounts := cfg.RootfsMounts
		if plan.Clone&ns.NEWUSER != 0 && len(rootfsMounts) > 0 {
			var err error
			if rootfsMounts, err = attachIdmappedLayers(c, root, rootfsMounts, tr); err != nil {
				return err
			}
		}
		if err := mountRootfsMounts(root, rootfsMounts, tr); err != nil {
			return err
		}
	}
	// The root mount's own propagation until pivot_root, which refuses a
	// shared one: private by default, slave when the spec asks for slave
	// or shared propagation (host mounts keep propagating in).
	own := uintptr(unix.MS_PRIVATE)
	if want&(unix.MS_SLAVE|unix.MS_SHARED) != 0 {
		own = unix.MS_SLAVE
	}
	if err := unix.Mount("", root, "", own, ""); err != nil {
		return fmt.Errorf("set propagation of the rootfs: %w", err)
	}
	return nil
}

func makeRootPropagation(prop uintptr, tr *trace.Tracer) error {
	tr.Step("mount", "make / %s (nothing we mount propagates to the host)", mount.FlagString(prop))
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	return nil
}

func mountRootfsMounts(root string, mounts []mount.Mount, tr *trace.Tracer) error {
	for _, m := range mounts {
		m.Target = root
		if err := mount.Do(m, tr); err != nil {
			return err
		}
	}
	return nil
}

// mountEarlyRoot is the part of prepareRoot that needs no spec, done
// while the spec is decoded (initConfig.EarlyRoot): / becomes a recursive
// slave and the root filesystem's own mounts (the overlay) are made.
func mountEarlyRoot(cfg *initConfig, tr *trace.Tracer) error {
	unix.Umask(0)
	defer unix.Umask(0o022)
	if err := makeRootPropagation(unix.MS_SLAVE|unix.MS_REC, tr); err != nil {
		return err
	}
	return mountRootfsMounts(cfg.Rootfs, cfg.RootfsMounts, tr)
}

// rootPropagation parses linux.rootfsPropagation (0 when unset).
func rootPropagation(spec *specs.Spec) (uintptr, error) {
	p := spec.Linux.RootfsPropagation
	if p == "" {
		return 0, nil
	}
	f, ok := mount.PropagationFlag(p)
	if !ok {
		return 0, fmt.Errorf("rootfsPropagation %q: unknown", p)
	}
	return f, nil
}

// parentMountPrivate makes the mount that holds path private when it is
// shared (pivot_root(2): the parent of new_root must not be shared).
func parentMountPrivate(path string, tr *trace.Tracer) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	best, shared := "", false
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		mp := mount.UnescapeMountinfo(f[4])
		if (mp == "/" || path == mp || strings.HasPrefix(path, mp+"/")) && len(mp) >= len(best) {
			best, shared = mp, false
			for _, opt := range f[6:] {
				if opt == "-" {
					break
				}
				if strings.HasPrefix(opt, "shared:") {
					shared = true
				}
			}
		}
	}
	if best == "" || !shared {
		return nil
	}
	tr.Step("mount", "make %s private (parent mount of the rootfs)", best)
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}

// bundleDir is the directory relative bind sources resolve against.
func (c *initConfig) bundleDir() string {
	if c.Bundle != "" {
		return c.Bundle
	}
	return filepath.Dir(c.Rootfs)
}

// moveRoot makes root the root without pivot_root (--no-pivot, for a
// rootfs on ramfs, which pivot_root refuses): MS_MOVE it onto / and chroot.
// The old root stays reachable to anyone who escapes the chroot; runc
// documents the same caveat.
func moveRoot(root string, tr *trace.Tracer) error {
	tr.Step("pivot", "mount(%q, \"/\", MS_MOVE), chroot(\".\") (--no-pivot)", root)
	if err := unix.Chdir(root); err != nil {
		return fmt.Errorf("chdir to new root %q: %w", root, err)
	}
	if err := unix.Mount(root, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move root %q: %w", root, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	return unix.Chdir("/")
}

func createDevices(root string, spec *specs.Spec, userns bool, tr *trace.Tracer) error {
	devs := append([]specs.LinuxDevice{}, defaultDevices...)
	devs = append(devs, spec.Linux.Devices...)
	for _, d := range devs {
		if err := createDevice(root, d, userns, tr); err != nil {
			return err
		}
	}
	return nil
}

func createDevice(root string, d specs.LinuxDevice, userns bool, tr *trace.Tracer) error {
	dir, err := mount.OpenInRoot(root, filepath.Dir(d.Path), true, false)
	if err != nil {
		return fmt.Errorf("device %s: %w", d.Path, err)
	}
	defer unix.Close(dir)
	dirPath := fmt.Sprintf("/proc/self/fd/%d", dir)
	name := filepath.Base(d.Path)
	target := filepath.Join(dirPath, name)
	if userns {
		// mknod is not allowed in a user namespace: bind the host's node.
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
		if f != nil {
			f.Close()
		}
		tr.Step("device", "bind host %s onto %s", d.Path, d.Path)
		if err := unix.Mount(d.Path, target, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind device %s: %w", d.Path, err)
		}
		return nil
	}
	var mode uint32
	switch d.Type {
	case "c", "u":
		mode = unix.S_IFCHR
	case "b":
		mode = unix.S_IFBLK
	case "p":
		mode = unix.S_IFIFO
	default:
		return fmt.Errorf("device %s: type %q unknown", d.Path, d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(*d.FileMode & 0o7777)
	}
	tr.Step("device", "mknod(%s, %s %#o, %d:%d)", d.Path, d.Type, perm, d.Major, d.Minor)
	dev := int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))
	err = unix.Mknod(target, mode|perm, dev)
	if errors.Is(err, unix.EEXIST) {
		// The image's own node (or anything else) gives way. On the
		// fresh /dev tmpfs, nothing is there.
		unix.Unlink(target)
		err = unix.Mknod(target, mode|perm, dev)
	}
	if err != nil {
		return fmt.Errorf("mknod %s: %w", d.Path, err)
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid != 0 || gid != 0 {
		if err := unix.Lchown(target, uid, gid); err != nil {
			return fmt.Errorf("chown %s: %w", d.Path, err)
		}
	}
	return nil
}

// devLinks makes the /dev symlinks every Linux program expects.
func devLinks(root string, terminal bool, tr *trace.Tracer) error {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	dev, err := mount.OpenInRoot(root, "/dev", false, false)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	d := fmt.Sprintf("/proc/self/fd/%d/", dev)
	for _, l := range links {
		tr.Step("symlink", "%s -> %s", l[1], l[0])
		p := d + filepath.Base(l[1])
		err := unix.Symlink(l[0], p)
		if errors.Is(err, unix.EEXIST) {
			unix.Unlink(p)
			err = unix.Symlink(l[0], p)
		}
		if err != nil {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

func writeSysctl(key, value string, tr *trace.Tracer) error {
	p := filepath.Join("/proc/sys", filepath.FromSlash(replaceDots(key)))
	tr.Step("sysctl", "write %s = %q", p, value)
	if err := os.WriteFile(p, []byte(value), 0); err != nil {
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

func replaceDots(k string) string {
	b := []byte(k)
	for i := range b {
		if b[i] == '.' {
			b[i] = '/'
		}
	}
	return string(b)
}

// mountCgroup mounts the container's view of the cgroup hierarchy. After
// the cgroup namespace is unshared this would show the container's own
// cgroup as root; we mount before that, so we bind what is ours: a
// read-only tmpfs placeholder keeps /sys/fs/cgroup present and empty.
func mountCgroup(root string, m mount.Mount, tr *trace.Tracer) error {
	m.Type, m.Source, m.Data = "tmpfs", "cgroup", "mode=755,size=0"
	m.Flags |= mount.RDONLY
	return mount.MountIn(root, m, tr)
}
