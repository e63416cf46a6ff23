package image

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/trace"
)

// UnpackLayer applies the tar stream r to dir, an existing directory that
// only this call writes to (normally a fresh temp dir), as an overlay
// lowerdir: OCI whiteouts become overlay whiteouts (".wh.NAME" a 0/0
// character device NAME, ".wh..wh..opq" the xattrs trusted.overlay.opaque=y
// and user.overlay.opaque=y on its directory, for mounts with and without
// "userxattr").
//
// Nothing is written outside dir: names are cleaned lexically and rejected
// when absolute or escaping with ".."; every parent directory is opened
// relative to dir with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS), so an
// entry that goes through a symlink (even one the archive just made) is
// rejected instead of followed; an existing path is always unlinked and
// created anew (O_EXCL|O_NOFOLLOW), never opened with O_TRUNC, so a
// hardlink or symlink planted earlier cannot redirect the write; hardlink
// targets must be earlier entries of the same layer; device nodes other
// than the whiteout are rejected. Ownership, modes (setuid included: chmod
// follows chown), times and PAX xattrs are kept, except trusted.overlay.*
// and user.overlay.* xattrs, which would let a layer steer overlayfs.
// Directory modes and times are set after their contents are written.
//
// On error dir holds a partial tree: the caller removes it.
func UnpackLayer(dir string, r io.Reader, opts UnpackOptions) (UnpackStats, error) {
	root, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return UnpackStats{}, fmt.Errorf("opening layer dir %s: %w", dir, err)
	}
	u := &unpacker{
		rootPath: dir,
		root:     root,
		cacheFd:  -1,
		dirIndex: map[string]int{},
		buf:      make([]byte, 1<<20),
		t:        opts.Tracer,
		max:      opts.MaxSize,
	}
	if u.max <= 0 {
		u.max = DefaultMaxLayerSize
	}
	defer u.close()
	// New nodes are owned by our euid:egid unless the layer root is
	// setgid (every directory is made 0700 until finishDirs): then a
	// 0:0 entry needs no chown. The umask tells which modes need no
	// chmod. Fewer syscalls per file is most of unpacking's speed.
	var rst unix.Stat_t
	if unix.Fstat(root, &rst) == nil && rst.Mode&unix.S_ISGID == 0 {
		u.newIsRootOwned = os.Geteuid() == 0 && os.Getegid() == 0
	}
	u.umask, u.umaskKnown = processUmask()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return u.stats, fmt.Errorf("reading layer tar after %d entries: archive is truncated: %w", u.stats.Entries, err)
			}
			return u.stats, fmt.Errorf("reading layer tar after %d entries: %w", u.stats.Entries, err)
		}
		if err := u.apply(hdr, tr); err != nil {
			return u.stats, err
		}
		u.stats.Entries++
	}
	if err := u.finishDirs(); err != nil {
		return u.stats, err
	}
	return u.stats, nil
}

type dirMeta struct {
	rel          string
	mode         uint32
	atime, mtime time.Time
}

type unpacker struct {
	rootPath string
	root     int
	// The parent directory of the previous entry stays open: archives
	// list a directory's files together, so most lookups hit.
	cacheRel string
	cacheFd  int
	dirs     []dirMeta
	dirIndex map[string]int
	buf      []byte
	t        *trace.Tracer
	max      int64
	stats    UnpackStats

	newIsRootOwned bool   // a node we create is owned by 0:0
	umask          uint32 // applied to the modes of created files
	umaskKnown     bool
}

// needChown reports whether a node just created needs chown.
func (u *unpacker) needChown(hdr *tar.Header) bool {
	return !(u.newIsRootOwned && hdr.Uid == 0 && hdr.Gid == 0)
}

var umaskOnce struct {
	sync.Once
	mask  uint32
	known bool
}

// processUmask reads the umask from /proc/self/status (Linux 4.7+):
// reading it with umask(2) would change it for a moment, racing with
// other goroutines creating files.
func processUmask() (uint32, bool) {
	umaskOnce.Do(func() {
		data, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "Umask:"); ok {
				if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umaskOnce.mask, umaskOnce.known = uint32(m), true
				}
			}
		}
	})
	return umaskOnce.mask, umaskOnce.known
}

func (u *unpacker) close() {
	u.dropCache()
	unix.Close(u.root)
}

func (u *unpacker) dropCache() {
	if u.cacheFd >= 0 {
		unix.Close(u.cacheFd)
	}
	u.cacheFd, u.cacheRel = -1, ""
}

func (u *unpacker) apply(hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	rel, err := cleanEntryName(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return entryInvalid(hdr.Name, "names the layer root but is not a directory")
		}
		u.recordDir("", hdr)
		return nil
	}
	base := path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(hdr, rel, base)
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.mkdir(hdr, rel)
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.regular(hdr, rel, tr)
	case tar.TypeLink:
		return u.hardlink(hdr, rel)
	case tar.TypeSymlink:
		return u.symlink(hdr, rel)
	case tar.TypeChar, tar.TypeBlock:
		if hdr.Typeflag == tar.TypeChar && hdr.Devmajor == 0 && hdr.Devminor == 0 {
			// Already an overlay-style whiteout.
			return u.mknod(hdr, rel, unix.S_IFCHR, 0)
		}
		kind := "character"
		if hdr.Typeflag == tar.TypeBlock {
			kind = "block"
		}
		return entryInvalid(hdr.Name, "%s device %d:%d: device nodes are not allowed in image layers", kind, hdr.Devmajor, hdr.Devminor)
	case tar.TypeFifo:
		return u.mknod(hdr, rel, unix.S_IFIFO, 0)
	}
	return entryInvalid(hdr.Name, "unsupported tar entry type %q", hdr.Typeflag)
}

// parent returns an fd of the directory holding rel (creating missing
// directories 0755) and rel's last element. The fd belongs to the cache.
func (u *unpacker) parent(name, rel string) (int, string, error) {
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" {
		return u.root, base, nil
	}
	if dir == u.cacheRel && u.cacheFd >= 0 {
		return u.cacheFd, base, nil
	}
	fd, err := u.openDir(name, dir, true)
	if err != nil {
		return -1, "", err
	}
	u.dropCache()
	u.cacheFd, u.cacheRel = fd, dir
	return fd, base, nil
}

// testNoOpenat2 makes tests take the path of kernels without openat2.
var testNoOpenat2 = false

const resolveFlags = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// openDir opens the directory rel beneath the root without following any
// symlink, optionally creating missing components. The caller owns the fd.
func (u *unpacker) openDir(name, rel string, create bool) (int, error) {
	if testNoOpenat2 {
		return u.walk(name, rel, create)
	}
	how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: resolveFlags}
	fd, err := unix.Openat2(u.root, rel, &how)
	if err == nil {
		return fd, nil
	}
	switch {
	case errors.Is(err, unix.ENOENT):
		// Missing parents: walk creates them.
	case errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EPERM), errors.Is(err, unix.EAGAIN):
		// No openat2 (Linux < 5.6, or a seccomp profile that predates
		// it): the walk is as strict, one syscall per component.
	default:
		// ELOOP, ENOTDIR, EXDEV: walk to find which component is at fault.
		wfd, werr := u.walk(name, rel, false)
		if werr != nil {
			return -1, werr
		}
		unix.Close(wfd)
		return -1, entryErr(name, fmt.Errorf("opening parent %q: %w", rel, err))
	}
	return u.walk(name, rel, create)
}

// walk opens rel one component at a time with O_NOFOLLOW: the fallback
// for kernels without openat2 (before 5.6), the way to create missing
// parents, and the source of precise errors.
func (u *unpacker) walk(name, rel string, create bool) (int, error) {
	cur, err := unix.Dup(u.root)
	if err != nil {
		return -1, err
	}
	done := ""
	for _, comp := range strings.Split(rel, "/") {
		next, err := unix.Openat(cur, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, comp, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				next, err = unix.Openat(cur, comp, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		done = path.Join(done, comp)
		if err != nil {
			var st unix.Stat_t
			serr := unix.Fstatat(cur, comp, &st, unix.AT_SYMLINK_NOFOLLOW)
			unix.Close(cur)
			switch {
			case serr == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK:
				return -1, entryInvalid(name, "parent %q is a symlink: refusing to write through it", done)
			case serr == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR:
				return -1, entryInvalid(name, "parent %q is not a directory", done)
			}
			return -1, entryErr(name, fmt.Errorf("opening parent %q: %w", done, err))
		}
		unix.Close(cur)
		cur = next
	}
	return cur, nil
}

// removeExisting unlinks whatever is at base in pfd; a directory goes with
// its contents. Never following a symlink, it can only remove inside the
// layer.
func (u *unpacker) removeExisting(pfd int, base, rel string) error {
	err := unix.Unlinkat(pfd, base, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) {
		return err
	}
	// A directory. Its parents were just opened without following
	// symlinks and only this unpacker writes the tree, so the path is
	// safe to use.
	if u.cacheRel == rel || strings.HasPrefix(u.cacheRel, rel+"/") {
		u.dropCache()
	}
	return os.RemoveAll(filepath.Join(u.rootPath, rel))
}

// create runs mk, which makes a node at base in pfd with O_EXCL semantics;
// when something is in the way, it is unlinked (never opened, never
// followed) and mk runs again. Trying first saves a syscall per entry.
func (u *unpacker) create(pfd int, base, rel string, mk func() error) error {
	err := mk()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := u.removeExisting(pfd, base, rel); err != nil {
		return err
	}
	return mk()
}

func (u *unpacker) recordDir(rel string, hdr *tar.Header) {
	m := dirMeta{rel: rel, mode: uint32(hdr.Mode & 0o7777), mtime: hdr.ModTime, atime: hdr.AccessTime}
	if i, ok := u.dirIndex[rel]; ok {
		u.dirs[i] = m
		return
	}
	u.dirIndex[rel] = len(u.dirs)
	u.dirs = append(u.dirs, m)
}

func (u *unpacker) mkdir(hdr *tar.Header, rel string) error {
	pfd, base, err := u.parent(hdr.Name, rel)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := u.removeExisting(pfd, base, rel); err != nil {
			return entryErr(hdr.Name, err)
		}
		err = unix.ENOENT
	}
	created := false
	if err != nil {
		// 0700 until finishDirs sets the real mode.
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("mkdir: %w", err))
		}
		created = true
	}
	if !created || u.needChown(hdr) {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("chown: %w", err))
		}
	}
	if xattrs := u.xattrs(hdr); len(xattrs) > 0 {
		fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return entryErr(hdr.Name, err)
		}
		err = u.setXattrsFd(hdr.Name, fd, xattrs)
		unix.Close(fd)
		if err != nil {
			return err
		}
	}
	u.recordDir(rel, hdr)
	return nil
}

// fdWriter writes to a raw fd; it keeps os.File's poller and finalizer
// out of the per-file path.
type fdWriter int

func (w fdWriter) Write(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Write(int(w), p[n:])
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return n, err
		}
		n += m
	}
	return n, nil
}

func (u *unpacker) regular(hdr *tar.Header, rel string, tr io.Reader) error {
	if hdr.Size < 0 || hdr.Size > u.max-u.stats.Size {
		return entryInvalid(hdr.Name, "%d bytes exceed the layer size limit of %d bytes", hdr.Size, u.max)
	}
	pfd, base, err := u.parent(hdr.Name, rel)
	if err != nil {
		return err
	}
	// Created with its permission bits (the layer dir is private), so
	// most files need no chmod.
	want := uint32(hdr.Mode & 0o7777)
	perm := uint32(0o600)
	if u.umaskKnown {
		perm = want & 0o777
	}
	fd := -1
	err = u.create(pfd, base, rel, func() (err error) {
		fd, err = unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return entryErr(hdr.Name, fmt.Errorf("create: %w", err))
	}
	defer unix.Close(fd)
	n, err := io.CopyBuffer(fdWriter(fd), onlyReader{tr}, u.buf)
	if err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return entryErr(hdr.Name, fmt.Errorf("archive is truncated after %d of %d bytes: %w", n, hdr.Size, err))
		}
		return entryErr(hdr.Name, err)
	}
	if n != hdr.Size {
		return entryErr(hdr.Name, fmt.Errorf("archive is truncated after %d of %d bytes", n, hdr.Size))
	}
	u.stats.Size += n
	if u.needChown(hdr) {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("chown: %w", err))
		}
	}
	// After chown, which clears setuid/setgid.
	if !u.umaskKnown || want != perm&^u.umask {
		if err := unix.Fchmod(fd, want); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("chmod: %w", err))
		}
	}
	if err := u.setXattrsFd(hdr.Name, fd, u.xattrs(hdr)); err != nil {
		return err
	}
	if err := futimens(fd, hdr.AccessTime, hdr.ModTime); err != nil {
		return entryErr(hdr.Name, fmt.Errorf("set times: %w", err))
	}
	return nil
}

// onlyReader hides tar.Reader's WriteTo so CopyBuffer uses our buffer.
type onlyReader struct{ io.Reader }

func (u *unpacker) hardlink(hdr *tar.Header, rel string) error {
	target, err := cleanEntryName(hdr.Linkname)
	if err != nil || target == "" {
		return entryInvalid(hdr.Name, "hardlink target %q escapes the layer", hdr.Linkname)
	}
	if target == rel {
		return nil
	}
	tdir, tbase := path.Split(target)
	tfd := u.root
	if tdir = strings.TrimSuffix(tdir, "/"); tdir != "" {
		tfd, err = u.openDir(hdr.Name, tdir, false)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return entryInvalid(hdr.Name, "hardlink target %q is not in the layer", hdr.Linkname)
			}
			return err
		}
		defer unix.Close(tfd)
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryInvalid(hdr.Name, "hardlink target %q is not in the layer", hdr.Linkname)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return entryInvalid(hdr.Name, "hardlink target %q is a directory", hdr.Linkname)
	}
	pfd, base, err := u.parent(hdr.Name, rel)
	if err != nil {
		return err
	}
	// flags 0: link a symlink itself, never what it points to.
	if err := u.create(pfd, base, rel, func() error { return unix.Linkat(tfd, tbase, pfd, base, 0) }); err != nil {
		return entryErr(hdr.Name, fmt.Errorf("link to %q: %w", hdr.Linkname, err))
	}
	return nil
}

func (u *unpacker) symlink(hdr *tar.Header, rel string) error {
	pfd, base, err := u.parent(hdr.Name, rel)
	if err != nil {
		return err
	}
	// The target is stored as is: it is resolved inside the container's
	// root at run time, never by us.
	if err := u.create(pfd, base, rel, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) }); err != nil {
		return entryErr(hdr.Name, fmt.Errorf("symlink: %w", err))
	}
	return u.finishNode(hdr, rel, pfd, base, false)
}

func (u *unpacker) mknod(hdr *tar.Header, rel string, kind uint32, dev int) error {
	pfd, base, err := u.parent(hdr.Name, rel)
	if err != nil {
		return err
	}
	if err := u.create(pfd, base, rel, func() error { return unix.Mknodat(pfd, base, kind|0o600, dev) }); err != nil {
		return entryErr(hdr.Name, fmt.Errorf("mknod: %w", err))
	}
	return u.finishNode(hdr, rel, pfd, base, true)
}

// finishNode sets owner, mode (unless a symlink), xattrs and times of a
// node that has no open fd.
func (u *unpacker) finishNode(hdr *tar.Header, rel string, pfd int, base string, chmod bool) error {
	if u.needChown(hdr) {
		if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("chown: %w", err))
		}
	}
	if chmod {
		// The node was just made by mknod and is not a symlink, so
		// fchmodat (which follows) acts on it.
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode&0o7777), 0); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("chmod: %w", err))
		}
	}
	if xattrs := u.xattrs(hdr); len(xattrs) > 0 {
		// No *at form of lsetxattr before Linux 6.13; the parents of
		// the path were opened without following symlinks.
		p := filepath.Join(u.rootPath, rel)
		for k, v := range xattrs {
			if err := unix.Lsetxattr(p, k, []byte(v), 0); err != nil {
				if u.ignorableXattrErr(hdr.Name, k, err) {
					continue
				}
				return entryErr(hdr.Name, fmt.Errorf("setxattr %s: %w", k, err))
			}
		}
	}
	ts := timespecs(hdr.AccessTime, hdr.ModTime)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return entryErr(hdr.Name, fmt.Errorf("set times: %w", err))
	}
	return nil
}

func (u *unpacker) whiteout(hdr *tar.Header, rel, base string) error {
	if base == whiteoutOpaque {
		pfd, _, err := u.parent(hdr.Name, rel)
		if err != nil {
			return err
		}
		if err := unix.Fsetxattr(pfd, overlayOpaqueXattr, []byte("y"), 0); err != nil {
			return entryErr(hdr.Name, fmt.Errorf("marking %q opaque: %w", path.Dir(rel), err))
		}
		if err := unix.Fsetxattr(pfd, overlayUserOpaqueXattr, []byte("y"), 0); err != nil && !u.ignorableXattrErr(hdr.Name, overlayUserOpaqueXattr, err) {
			return entryErr(hdr.Name, fmt.Errorf("marking %q opaque for userxattr mounts: %w", path.Dir(rel), err))
		}
		return nil
	}
	if strings.HasPrefix(base, whiteoutMeta) {
		// Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs) means nothing to overlay.
		u.t.Step("unpack", "skipping whiteout metadata %q", hdr.Name)
		return nil
	}
	victim := base[len(whiteoutPrefix):]
	if victim == "" || victim == "." || victim == ".." {
		return entryInvalid(hdr.Name, "malformed whiteout")
	}
	pfd, _, err := u.parent(hdr.Name, rel)
	if err != nil {
		return err
	}
	vrel := path.Join(path.Dir(rel), victim)
	if err := u.create(pfd, victim, vrel, func() error { return unix.Mknodat(pfd, victim, unix.S_IFCHR, 0) }); err != nil {
		return entryErr(hdr.Name, fmt.Errorf("creating overlay whiteout: %w", err))
	}
	return nil
}

// xattrs returns the entry's PAX xattrs, minus overlay's own namespace.
func (u *unpacker) xattrs(hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, "SCHILY.xattr.")
		if !ok {
			continue
		}
		if isOverlayXattr(name) {
			u.t.Step("unpack", "dropping xattr %s of %q: overlay metadata may not come from a layer", name, hdr.Name)
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = v
	}
	return out
}

func (u *unpacker) setXattrsFd(name string, fd int, xattrs map[string]string) error {
	for k, v := range xattrs {
		if err := unix.Fsetxattr(fd, k, []byte(v), 0); err != nil {
			if u.ignorableXattrErr(name, k, err) {
				continue
			}
			return entryErr(name, fmt.Errorf("setxattr %s: %w", k, err))
		}
	}
	return nil
}

// ignorableXattrErr: a filesystem without xattr support, or user.* on a
// symlink or device (which the kernel refuses), loses the attribute as
// tar -x does.
func (u *unpacker) ignorableXattrErr(name, key string, err error) bool {
	if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) && strings.HasPrefix(key, "user.") {
		u.t.Step("unpack", "xattr %s of %q not kept: %v", key, name, err)
		return true
	}
	return false
}

// finishDirs sets directory modes and times, last, because writing into
// a directory changes its mtime.
func (u *unpacker) finishDirs() error {
	u.dropCache()
	for i := len(u.dirs) - 1; i >= 0; i-- {
		m := u.dirs[i]
		fd := u.root
		if m.rel != "" {
			var err error
			fd, err = u.openDir(m.rel, m.rel, false)
			if err != nil {
				// Replaced by a later non-directory entry.
				continue
			}
		}
		err := unix.Fchmod(fd, m.mode)
		if err == nil {
			err = futimens(fd, m.atime, m.mtime)
		}
		if fd != u.root {
			unix.Close(fd)
		}
		if err != nil {
			return entryErr(m.rel+"/", fmt.Errorf("setting mode and times: %w", err))
		}
	}
	return nil
}

func timespecs(atime, mtime time.Time) [2]unix.Timespec {
	if mtime.IsZero() {
		mtime = time.Unix(0, 0)
	}
	if atime.IsZero() {
		atime = mtime
	}
	return [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

// futimens sets the times of an open fd: utimensat(fd, NULL, ...), which
// x/sys/unix has no wrapper for.
func futimens(fd int, atime, mtime time.Time) error {
	ts := timespecs(atime, mtime)
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
