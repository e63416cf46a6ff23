package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// TreeSource is one directory of an overlay stack: an unpacked layer or a
// container's upper dir.
type TreeSource struct {
	Dir string
	// IDShift, when set, maps owners back from a --userns remap
	// container's host range: IDs in [IDShift, IDShift+65536) lose
	// IDShift, others become 65534 (nobody), as the container saw them.
	IDShift int
	// UserXattr says the dir was the upper of a "userxattr" overlay
	// mount: user.overlay.opaque marks its opaque dirs. Otherwise only
	// trusted.overlay.opaque counts: a plain mount copies user.* xattrs
	// up from lower dirs (which carry both) as ordinary ones.
	UserXattr bool
	// MountPoints are paths (relative, like "etc/hosts") the runtime
	// mounts over: an empty file or directory there is its mount point,
	// not content, and WriteLayerDiff leaves it out.
	MountPoints []string
}

// overflowID is what an owner outside the container's id map looks like
// from inside.
const overflowID = 65534

// WriteLayerDiff writes dir, an overlay upper dir, as an OCI layer tar:
// 0/0 character devices (overlay whiteouts) become ".wh.NAME" entries and
// directories with trusted.overlay.opaque or user.overlay.opaque set get a
// ".wh..wh..opq" entry. Overlay's own xattrs are left out.
func WriteLayerDiff(w io.Writer, src TreeSource) error {
	return writeTree(w, []TreeSource{src}, true)
}

// WriteFlattened writes the merged view of an overlay stack (srcs bottom
// first, as overlayfs would show it) as a tar: whiteouts hide what is
// below them and opaque directories hide lower contents.
func WriteFlattened(w io.Writer, srcs []TreeSource) error {
	top := make([]TreeSource, len(srcs))
	for i, s := range srcs {
		top[len(srcs)-1-i] = s
	}
	return writeTree(w, top, false)
}

// writeTree walks srcs (top first) without following any symlink: every
// directory and file is opened relative to its parent's fd with
// O_NOFOLLOW, so a running container swapping a path for a symlink cannot
// make us read a host file.
func writeTree(w io.Writer, srcs []TreeSource, diff bool) error {
	tw := tar.NewWriter(w)
	t := &treeWriter{tw: tw, diff: diff, links: map[[2]uint64]string{}, buf: make([]byte, 1<<20)}
	var roots []srcDir
	defer func() {
		for _, r := range roots {
			unix.Close(r.fd)
		}
	}()
	for i := range srcs {
		fd, err := unix.Open(srcs[i].Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) && !diff {
				continue // a container that never ran has no upper dir
			}
			return fmt.Errorf("opening %s: %w", srcs[i].Dir, err)
		}
		roots = append(roots, srcDir{fd: fd, src: &srcs[i]})
		if !diff && isOpaqueFd(fd, &srcs[i]) {
			break
		}
	}
	if err := t.walk("", roots); err != nil {
		return err
	}
	return tw.Close()
}

type srcDir struct {
	fd  int
	src *TreeSource
}

type treeWriter struct {
	tw    *tar.Writer
	diff  bool
	links map[[2]uint64]string // (dev, ino) -> first path written
	buf   []byte
}

func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaqueFd(fd int, src *TreeSource) bool {
	x := overlayOpaqueXattr
	if src.UserXattr {
		x = overlayUserOpaqueXattr
	}
	var b [8]byte
	n, err := unix.Fgetxattr(fd, x, b[:])
	return err == nil && string(b[:n]) == "y"
}

// isMountPoint tells the runtime's empty mount points from content.
func (t *treeWriter) isMountPoint(p string, src *TreeSource, st *unix.Stat_t) bool {
	if !t.diff {
		return false
	}
	for _, m := range src.MountPoints {
		if m == p {
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFREG:
				return st.Size == 0
			case unix.S_IFDIR:
				return st.Nlink <= 2
			}
		}
	}
	return false
}

func readNames(fd int) ([]string, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

type treeChild struct {
	name  string
	st    unix.Stat_t
	layer int
}

// walk writes the children of the directory rel, whose instances in the
// stack are dirs (top first; their fds belong to the caller).
func (t *treeWriter) walk(rel string, dirs []srcDir) error {
	seen := map[string]bool{}
	var kids []treeChild
	for li, d := range dirs {
		names, err := readNames(d.fd)
		if err != nil {
			return fmt.Errorf("reading %s/%s: %w", d.src.Dir, rel, err)
		}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			k := treeChild{name: n, layer: li}
			if err := unix.Fstatat(d.fd, n, &k.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // removed while we read
				}
				return fmt.Errorf("stat %s/%s: %w", d.src.Dir, path.Join(rel, n), err)
			}
			kids = append(kids, k)
		}
	}
	sort.Slice(kids, func(i, j int) bool { return kids[i].name < kids[j].name })
	for i := range kids {
		if err := t.child(rel, dirs, &kids[i]); err != nil {
			return err
		}
	}
	return nil
}

func (t *treeWriter) child(rel string, dirs []srcDir, k *treeChild) error {
	p := path.Join(rel, k.name)
	d := dirs[k.layer]
	st := &k.st
	if isWhiteout(st) {
		if t.diff {
			hdr := t.header(path.Join(rel, whiteoutPrefix+k.name), st, d.src)
			hdr.Typeflag, hdr.Mode = tar.TypeReg, 0
			return t.write(hdr, p)
		}
		return nil
	}
	if t.isMountPoint(p, d.src, st) {
		return nil
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := unix.Openat(d.fd, k.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening %s/%s: %w", d.src.Dir, p, err)
		}
		sub := []srcDir{{fd: fd, src: d.src}}
		defer func() {
			for _, s := range sub {
				unix.Close(s.fd)
			}
		}()
		hdr := t.header(p+"/", st, d.src)
		hdr.Typeflag = tar.TypeDir
		if err := t.xattrs(hdr, fd); err != nil {
			return err
		}
		if err := t.write(hdr, p); err != nil {
			return err
		}
		opaque := isOpaqueFd(fd, d.src)
		if t.diff && opaque {
			wh := t.header(path.Join(p, whiteoutOpaque), st, d.src)
			wh.Typeflag, wh.Mode = tar.TypeReg, 0
			if err := t.write(wh, p); err != nil {
				return err
			}
		}
		if !t.diff && !opaque {
			// The same directory in lower layers merges in, down to the
			// first layer where it is opaque or not a directory.
			for _, lower := range dirs[k.layer+1:] {
				var lst unix.Stat_t
				err := unix.Fstatat(lower.fd, k.name, &lst, unix.AT_SYMLINK_NOFOLLOW)
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				if err != nil || lst.Mode&unix.S_IFMT != unix.S_IFDIR {
					break
				}
				lfd, err := unix.Openat(lower.fd, k.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("opening %s/%s: %w", lower.src.Dir, p, err)
				}
				sub = append(sub, srcDir{fd: lfd, src: lower.src})
				if isOpaqueFd(lfd, lower.src) {
					break
				}
			}
		}
		return t.walk(p, sub)
	case unix.S_IFREG:
		return t.regular(p, d, k)
	case unix.S_IFLNK:
		target, err := readlinkat(d.fd, k.name)
		if err != nil {
			return fmt.Errorf("readlink %s/%s: %w", d.src.Dir, p, err)
		}
		hdr := t.header(p, st, d.src)
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		return t.write(hdr, p)
	case unix.S_IFIFO:
		hdr := t.header(p, st, d.src)
		hdr.Typeflag = tar.TypeFifo
		return t.write(hdr, p)
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr := t.header(p, st, d.src)
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		return t.write(hdr, p)
	}
	return nil // sockets are not file system content
}

func (t *treeWriter) regular(p string, d srcDir, k *treeChild) error {
	st := &k.st
	if st.Nlink > 1 {
		key := [2]uint64{st.Dev, st.Ino}
		if first, ok := t.links[key]; ok {
			hdr := t.header(p, st, d.src)
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
			return t.write(hdr, p)
		}
		t.links[key] = p
	}
	fd, err := unix.Openat(d.fd, k.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s/%s: %w", d.src.Dir, p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	// What was opened is what is described.
	if err := unix.Fstat(fd, st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s/%s changed while being read", d.src.Dir, p)
	}
	if md, err := getxattrFd(fd, "trusted.overlay.metacopy"); err == nil && md != nil {
		return fmt.Errorf("%s/%s is an overlay metacopy file: mount overlays without metacopy to commit or export", d.src.Dir, p)
	}
	hdr := t.header(p, st, d.src)
	hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	if err := t.xattrs(hdr, fd); err != nil {
		return err
	}
	if err := t.write(hdr, p); err != nil {
		return err
	}
	n, err := io.CopyBuffer(t.tw, io.LimitReader(onlyReader{f}, st.Size), t.buf)
	if err != nil {
		return fmt.Errorf("reading %s/%s: %w", d.src.Dir, p, err)
	}
	if n != st.Size {
		return fmt.Errorf("%s/%s shrank while being read", d.src.Dir, p)
	}
	return nil
}

func (t *treeWriter) header(name string, st *unix.Stat_t, src *TreeSource) *tar.Header {
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     shiftID(st.Uid, src.IDShift),
		Gid:     shiftID(st.Gid, src.IDShift),
		ModTime: time.Unix(st.Mtim.Sec, 0),
	}
}

func shiftID(id uint32, shift int) int {
	if shift == 0 {
		return int(id)
	}
	if int(id) >= shift && int(id) < shift+65536 {
		return int(id) - shift
	}
	return overflowID
}

func (t *treeWriter) write(hdr *tar.Header, what string) error {
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing tar entry %q: %w", what, err)
	}
	return nil
}

// xattrs adds the fd's xattrs, minus overlay's own, as PAX records.
func (t *treeWriter) xattrs(hdr *tar.Header, fd int) error {
	sz, err := unix.Flistxattr(fd, nil)
	if err != nil || sz == 0 {
		return nil // no xattr support: nothing to keep
	}
	buf := make([]byte, sz)
	sz, err = unix.Flistxattr(fd, buf)
	if err != nil {
		return nil
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00") {
		if name == "" || isOverlayXattr(name) {
			continue
		}
		v, err := getxattrFd(fd, name)
		if err != nil || v == nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(v)
	}
	return nil
}

// getxattrFd returns an xattr's value, nil when it is not set.
func getxattrFd(fd int, name string) ([]byte, error) {
	sz, err := unix.Fgetxattr(fd, name, nil)
	if errors.Is(err, unix.ENODATA) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Fgetxattr(fd, name, buf)
	if err != nil {
		return nil, err
	}
	return buf[:sz], nil
}

func readlinkat(dirfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}
