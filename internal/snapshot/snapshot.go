// Package snapshot turns an image's read-only layers into a container's
// writable root filesystem. A Snapshotter returns mounts as data; the
// runtime performs them inside the container's mount namespace.
package snapshot

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/mount"
)

// Snapshotter prepares and removes per-container writable layers.
type Snapshotter interface {
	// Prepare makes the writable layer for a container in dir on top of
	// layers (unpacked layer directories, bottom first) and returns the
	// mounts that assemble the root filesystem (targets are left empty:
	// the runtime mounts them on the rootfs directory). uid/gid own the
	// writable layer's root (the container's root user on the host).
	Prepare(dir string, layers []string, uid, gid int) ([]mount.Mount, error)
	// Remove deletes what Prepare made in dir.
	Remove(dir string) error
}

// Overlay is the overlayfs snapshotter: layers are lowerdirs, each container
// gets dir/upper and dir/work.
type Overlay struct{}

// maxMountData is the most mount(2) copies of its data argument (a page).
const maxMountData = 4095

// Prepare implements Snapshotter.
func (Overlay) Prepare(dir string, layers []string, uid, gid int) ([]mount.Mount, error) {
	if len(layers) == 0 {
		return nil, errdefs.Invalidf("image has no layers")
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
		if uid != 0 || gid != 0 {
			if err := os.Chown(d, uid, gid); err != nil {
				return nil, fmt.Errorf("chown %s: %w", d, err)
			}
		}
	}
	// overlayfs wants the top layer first.
	lower := make([]string, len(layers))
	for i, l := range layers {
		if strings.ContainsAny(l, ":,") {
			return nil, errdefs.Invalidf("layer path %q: contains ':' or ','", l)
		}
		lower[len(layers)-1-i] = l
	}
	data := "lowerdir=" + strings.Join(lower, ":") + ",upperdir=" + upper + ",workdir=" + work
	if len(data) > maxMountData {
		return nil, errdefs.Unsupportedf("image has %d layers: overlay mount options of %d bytes exceed the kernel's page", len(layers), len(data))
	}
	return []mount.Mount{{Source: "overlay", Type: "overlay", Data: data}}, nil
}

// Volatile returns mounts with overlayfs's "volatile" option added to the
// overlay ones: the kernel then skips every sync of the writable layer,
// the syncfs of the whole upper filesystem when the container's mount
// namespace goes away included (milliseconds on a busy disk, on every
// container exit). Only for writable layers that are thrown away with the
// container (--rm): after a host crash overlayfs refuses to mount a
// volatile upper directory again (filesystems/overlayfs.rst, "Volatile
// mount").
func Volatile(mounts []mount.Mount) []mount.Mount {
	out := make([]mount.Mount, len(mounts))
	for i, m := range mounts {
		if m.Type == "overlay" {
			m.Data += ",volatile"
		}
		out[i] = m
	}
	return out
}

// Remove implements Snapshotter.
func (Overlay) Remove(dir string) error {
	for _, d := range []string{"upper", "work"} {
		if err := os.RemoveAll(filepath.Join(dir, d)); err != nil {
			return err
		}
	}
	return nil
}
