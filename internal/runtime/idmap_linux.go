package runtime

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/trace"
)

// Under a user namespace the image's layers, owned by host root, would look
// owned by nobody. The parent (host root) makes an idmapped clone of each
// layer with the container's user namespace (mount_setattr(2),
// MOUNT_ATTR_IDMAP) and passes the detached mounts to init, which attaches
// them in its own mount namespace and stacks the overlay on them. The layers
// on disk stay shared and unchanged.

const msgIdmap = "idmap"

// sendIdmappedLayers clones every overlay lowerdir of mounts as an
// idmapped detached mount for the user namespace of pid, and sends them to
// init in lowerdir order.
func sendIdmappedLayers(c *syncConn, pid int, mounts []mount.Mount, tr *trace.Tracer) error {
	userns, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open user namespace of init: %w", err)
	}
	defer unix.Close(userns)
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, m := range mounts {
		if m.Type != "overlay" {
			continue
		}
		for _, l := range mount.OverlayLowers(m.Data) {
			tr.Step("idmap", "open_tree(%q, OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_IDMAP|MOUNT_ATTR_RDONLY, userns of pid %d)", l, pid)
			fd, err := unix.OpenTree(unix.AT_FDCWD, l, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
			if err != nil {
				return fmt.Errorf("clone layer %s: %w", l, err)
			}
			fds = append(fds, fd)
			attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP | unix.MOUNT_ATTR_RDONLY, Userns_fd: uint64(userns)}
			if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
				if err == unix.EINVAL || err == unix.ENOSYS {
					return fmt.Errorf("--userns remap needs idmapped mounts, which %s (%s) does not support on this kernel: %w",
						l, fsType(l), errdefs.ErrUnsupported)
				}
				return fmt.Errorf("idmap layer %s: %w", l, err)
			}
		}
	}
	return c.send(message{Type: msgIdmap}, fds...)
}

// attachIdmappedLayers receives the idmapped layers and attaches them under
// a private tmpfs on root (covered later by the overlay itself), rewriting
// each overlay mount to use them.
func attachIdmappedLayers(c *syncConn, root string, mounts []mount.Mount, tr *trace.Tracer) ([]mount.Mount, error) {
	var m message
	fds, err := c.recvRaw(&m)
	if err != nil || m.Type != msgIdmap {
		return nil, fmt.Errorf("receive idmapped layers: %v (%q)", err, m.Type)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	tr.Step("mount", "tmpfs on %s (staging for idmapped layers)", root)
	if err := unix.Mount("tmpfs", root, "tmpfs", 0, "mode=700"); err != nil {
		return nil, fmt.Errorf("mount staging tmpfs: %w", err)
	}
	out := append([]mount.Mount{}, mounts...)
	n := 0
	for i, mt := range out {
		if mt.Type != "overlay" {
			continue
		}
		lowers := mount.OverlayLowers(mt.Data)
		for j := range lowers {
			if n >= len(fds) {
				return nil, fmt.Errorf("init got %d idmapped layers, needs more", len(fds))
			}
			dir := root + "/" + strconv.Itoa(n)
			if err := unix.Mkdir(dir, 0o700); err != nil {
				return nil, err
			}
			tr.Step("mount", "move_mount(idmapped %s -> %s)", lowers[j], dir)
			if err := unix.MoveMount(fds[n], "", unix.AT_FDCWD, dir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
				return nil, fmt.Errorf("attach idmapped layer %s: %w", lowers[j], err)
			}
			lowers[j] = dir
			n++
		}
		out[i].Data = mount.WithOverlayLowers(mt.Data, lowers, "userxattr")
	}
	return out, nil
}

// fsType names the filesystem holding path, for error messages.
func fsType(path string) string {
	var st unix.Statfs_t
	if unix.Statfs(path, &st) != nil {
		return "unknown filesystem"
	}
	switch st.Type {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return fmt.Sprintf("filesystem type %#x", st.Type)
}

// Idmapped bind mounts (runtime-spec config.md, "POSIX-platform Mounts":
// uidMappings/gidMappings with the idmap or ridmap option). The parent
// clones each source (open_tree(2), OPEN_TREE_CLONE) and idmaps the clone
// (mount_setattr(2), MOUNT_ATTR_IDMAP) with a user namespace holding the
// mount's mappings, or, without mappings, the container's own user
// namespace; init attaches the detached mounts at their destinations with
// move_mount(2). A file owned on disk by a mapping's containerID shows as
// owned by its hostID (then seen through the container's user namespace,
// if any).

const msgIdmapMounts = "idmap-mounts"

// UsernsArg is argv[1] of a process that only holds a user namespace open
// for idmapped mounts: it waits for its stdin to close.
const UsernsArg = "__cfs_userns"

// HoldUserns is the whole life of a UsernsArg process.
func HoldUserns() {
	io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// idmapOf reports whether a spec mount is idmapped, and recursively so.
func idmapOf(m specs.Mount) (idmap, recursive bool) {
	for _, o := range m.Options {
		switch o {
		case "idmap":
			idmap = true
		case "ridmap":
			idmap, recursive = true, true
		}
	}
	return idmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0, recursive
}

func hasIdmappedMounts(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if idmap, _ := idmapOf(m); idmap {
			return true
		}
	}
	return false
}

// checkIdmappedMount validates an idmapped mount of spec (CheckSpec).
func checkIdmappedMount(m specs.Mount, userns bool) error {
	mm, err := mount.FromSpec(m)
	if err != nil {
		return err
	}
	switch {
	case !mm.IsBind():
		return fmt.Errorf("mount %s: idmap and uid/gid mappings apply to bind mounts only", m.Destination)
	case (len(m.UIDMappings) > 0) != (len(m.GIDMappings) > 0):
		return fmt.Errorf("mount %s: uidMappings and gidMappings must be given together", m.Destination)
	case len(m.UIDMappings) == 0 && !userns:
		return fmt.Errorf("mount %s: idmap without uidMappings/gidMappings uses the container's user namespace, and it has none", m.Destination)
	}
	return nil
}

// sendIdmappedMounts sends init, in spec order, an idmapped detached clone
// of each idmapped mount's source.
func sendIdmappedMounts(c *syncConn, pid int, spec *specs.Spec, bundle string, tr *trace.Tracer) error {
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	usernsFDs := map[string]int{} // by mappings
	defer func() {
		for _, fd := range usernsFDs {
			unix.Close(fd)
		}
	}()
	for _, sm := range spec.Mounts {
		idmap, recursive := idmapOf(sm)
		if !idmap {
			continue
		}
		m, err := mount.FromSpec(sm)
		if err != nil {
			return err
		}
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(bundle, src)
		}
		key := fmt.Sprint(sm.UIDMappings, sm.GIDMappings)
		userns, ok := usernsFDs[key]
		if !ok {
			if len(sm.UIDMappings) == 0 {
				userns, err = unix.Open("/proc/"+strconv.Itoa(pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			} else {
				userns, err = newUserns(sm.UIDMappings, sm.GIDMappings, tr)
			}
			if err != nil {
				return fmt.Errorf("mount %s: user namespace for its idmap: %w", sm.Destination, err)
			}
			usernsFDs[key] = userns
		}
		flags, setFlags := unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC, unix.AT_EMPTY_PATH
		if m.Flags&mount.REC != 0 {
			flags |= unix.AT_RECURSIVE
		}
		if recursive {
			setFlags |= unix.AT_RECURSIVE
		}
		tr.Step("idmap", "open_tree(%q, clone, recursive=%v) + mount_setattr(MOUNT_ATTR_IDMAP, recursive=%v) for %s",
			src, flags&unix.AT_RECURSIVE != 0, recursive, sm.Destination)
		fd, err := unix.OpenTree(unix.AT_FDCWD, src, uint(flags))
		if err != nil {
			return fmt.Errorf("mount %s: clone %s: %w", sm.Destination, src, err)
		}
		fds = append(fds, fd)
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns)}
		if err := unix.MountSetattr(fd, "", uint(setFlags), &attr); err != nil {
			if err == unix.EINVAL || err == unix.ENOSYS {
				return fmt.Errorf("mount %s: %s (%s) cannot be idmapped on this kernel: %w", sm.Destination, src, fsType(src), errdefs.ErrUnsupported)
			}
			return fmt.Errorf("mount %s: idmap %s: %w", sm.Destination, src, err)
		}
	}
	return c.send(message{Type: msgIdmapMounts}, fds...)
}

// newUserns returns a descriptor of a new user namespace with the given
// mappings, held by a short-lived child (UsernsArg).
func newUserns(uids, gids []specs.LinuxIDMapping, tr *trace.Tracer) (int, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return -1, err
	}
	defer w.Close()
	cmd := exec.Command("/proc/self/exe", UsernsArg)
	cmd.Stdin = r
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER,
		UidMappings: idMaps(uids), GidMappings: idMaps(gids)}
	tr.Step("userns", "new user namespace for an idmapped mount: uid_map %v, gid_map %v", uids, gids)
	err = cmd.Start()
	r.Close()
	if err != nil {
		return -1, err
	}
	fd, err := unix.Open("/proc/"+strconv.Itoa(cmd.Process.Pid)+"/ns/user", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	w.Close()
	cmd.Wait()
	return fd, err
}

// recvIdmappedMounts receives sendIdmappedMounts' descriptors.
func recvIdmappedMounts(c *syncConn) ([]int, error) {
	var m message
	fds, err := c.recvRaw(&m)
	if err != nil || m.Type != msgIdmapMounts {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive idmapped mounts: %v (%q)", err, m.Type)
	}
	return fds, nil
}
