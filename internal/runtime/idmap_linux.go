package runtime

import (
	"fmt"
	"strconv"

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
