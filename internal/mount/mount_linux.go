package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/trace"
)

// Error is a failed mount: it names the mount and unwraps to the errno.
type Error struct {
	Op    string
	Mount Mount
	Err   error
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s %s on %q (type %q, flags %s, data %q): %v",
		e.Op, orNone(e.Mount.Source), e.Mount.Target, e.Mount.Type, FlagString(e.Mount.Flags), e.Mount.Data, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// OpenInRoot resolves path inside root without ever leaving it: symlinks,
// including absolute ones and "..", resolve as if root were "/"
// (openat2 RESOLVE_IN_ROOT, which the kernel does race-free). With create
// set, missing components are made: directories, and for the last one a
// directory or (when file is set) an empty regular file. It returns an
// O_PATH descriptor that the caller closes.
func OpenInRoot(root, path string, create, file bool) (int, error) {
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootfd)
	return openAt(rootfd, path, create, file)
}

func resolve(rootfd int, rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(rootfd, rel, &how)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		return fd, err
	}
}

func openAt(rootfd int, path string, create, file bool) (int, error) {
	rel := strings.TrimLeft(filepath.Clean("/"+path), "/")
	if rel == "" {
		rel = "."
	}
	fd, err := resolve(rootfd, rel)
	if err == nil || !create || !errors.Is(err, unix.ENOENT) {
		if err != nil {
			return -1, &os.PathError{Op: "resolve", Path: path, Err: err}
		}
		return fd, nil
	}
	// Walk and create component by component; each step resolves inside
	// the root again, so a symlink planted by the image cannot redirect us.
	parts := strings.Split(rel, "/")
	cur := ""
	for i, p := range parts {
		next := p
		if cur != "" {
			next = cur + "/" + p
		}
		if efd, err := resolve(rootfd, next); err == nil {
			unix.Close(efd)
		} else if errors.Is(err, unix.ENOENT) {
			parent := rootfd
			if cur != "" {
				parent, err = resolve(rootfd, cur)
				if err != nil {
					return -1, &os.PathError{Op: "resolve", Path: cur, Err: err}
				}
			}
			// mkdirat/openat on an O_PATH dir fd: re-open it as a real dir.
			pfd, err := unix.Openat(parent, ".", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if parent != rootfd {
				unix.Close(parent)
			}
			if err != nil {
				return -1, &os.PathError{Op: "open", Path: "/" + cur, Err: err}
			}
			if i == len(parts)-1 && file {
				var f int
				f, err = unix.Openat(pfd, p, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
				if err == nil {
					unix.Close(f)
				}
			} else {
				err = unix.Mkdirat(pfd, p, 0o755)
			}
			unix.Close(pfd)
			if err != nil && !errors.Is(err, unix.EEXIST) {
				return -1, &os.PathError{Op: "create", Path: "/" + next, Err: err}
			}
		} else {
			return -1, &os.PathError{Op: "resolve", Path: "/" + next, Err: err}
		}
		cur = next
	}
	fd, err = resolve(rootfd, rel)
	if err != nil {
		return -1, &os.PathError{Op: "resolve", Path: path, Err: err}
	}
	return fd, nil
}

func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// MountIn performs m with its target resolved inside root (see OpenInRoot).
// The mount is made on the resolved descriptor's /proc/self/fd path, so the
// target cannot be swapped for a symlink between check and use.
func MountIn(root string, m Mount, tr *trace.Tracer) error {
	file := false
	if m.IsBind() {
		if st, err := os.Stat(m.Source); err != nil {
			return &Error{Op: "stat source of", Mount: m, Err: err}
		} else if !st.IsDir() {
			file = true
		}
	}
	fd, err := OpenInRoot(root, m.Target, true, file)
	if err != nil {
		return &Error{Op: "prepare target of", Mount: m, Err: err}
	}
	defer unix.Close(fd)
	// The descriptor keeps pointing at what the mount covers: remounts and
	// propagation changes need the new mount, so resolve the path again.
	reopen := func() (string, func(), error) {
		fd2, err := OpenInRoot(root, m.Target, false, false)
		if err != nil {
			return "", nil, err
		}
		return procFD(fd2), func() { unix.Close(fd2) }, nil
	}
	return mountAt(procFD(fd), m, tr, reopen)
}

// Do performs m at its target as given (an absolute path in the current
// root): for mounts whose target is not image-controlled.
func Do(m Mount, tr *trace.Tracer) error { return mountAt(m.Target, m, tr, nil) }

// mountAt mounts on target; reopen, when set, gives the path to use for the
// follow-up calls that must reach the new mount.
func mountAt(target string, m Mount, tr *trace.Tracer, reopen func() (string, func(), error)) error {
	flags := m.Flags &^ (SHARED | SLAVE | PRIVATE | UNBINDABLE)
	if tr.On() {
		tr.Step("mount", "%s", m.String())
	}
	if m.DetachedFD != 0 {
		// T_SYMLINKS: target may be a /proc/self/fd magic link.
		if err := unix.MoveMount(m.DetachedFD, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_SYMLINKS); err != nil {
			return &Error{Op: "attach", Mount: m, Err: err}
		}
	} else if err := unix.Mount(m.Source, target, m.Type, flags, m.Data); err != nil {
		return &Error{Op: "mount", Mount: m, Err: err}
	}
	if reopen != nil && (len(m.Propagation) > 0 || (m.IsBind() && flags&^(BIND|REC|REMOUNT) != 0)) {
		t, done, err := reopen()
		if err != nil {
			return &Error{Op: "reopen target of", Mount: m, Err: err}
		}
		defer done()
		target = t
	}
	// A bind ignores every flag but MS_REC on the first call: remount to
	// apply ro, nosuid, nodev, noexec (mount(2), "Creating a bind mount").
	if m.IsBind() && flags&^(BIND|REC|REMOUNT) != 0 {
		rf := flags | REMOUNT | BIND
		rf &^= REC
		if tr.On() {
			tr.Step("mount", "remount %s flags=%s", m.Target, FlagString(rf))
		}
		if err := unix.Mount("", target, "", rf, ""); err != nil {
			// In a user namespace, flags locked by the host (nosuid,
			// nodev, noexec) must be kept: retry with them added.
			var st unix.Statfs_t
			if unix.Statfs(target, &st) == nil {
				rf |= uintptr(st.Flags) & (NOSUID | NODEV | NOEXEC | RDONLY)
				if unix.Mount("", target, "", rf, "") == nil {
					goto propagation
				}
			}
			return &Error{Op: "remount", Mount: m, Err: err}
		}
	}
propagation:
	for _, p := range m.Propagation {
		if tr.On() {
			tr.Step("mount", "make %s %s", m.Target, FlagString(p))
		}
		if err := unix.Mount("", target, "", p, ""); err != nil {
			return &Error{Op: "set propagation of", Mount: m, Err: err}
		}
	}
	return nil
}

// PivotRoot makes newRoot the root of the current mount namespace and
// detaches the old root, without needing a directory for it: pivot_root(".",
// ".") stacks the old root on top of the new one, and the detach unmounts it
// (pivot_root(2), NOTES).
func PivotRoot(newRoot string, tr *trace.Tracer) error {
	tr.Step("pivot", "pivot_root(%q, %q), then umount2(old root, MNT_DETACH)", newRoot, newRoot)
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open old root: %w", err)
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(newRoot, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open new root %q: %w", newRoot, err)
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return fmt.Errorf("chdir to new root %q: %w", newRoot, err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root %q: %w", newRoot, err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// The old root may be shared with the host: make it a slave so the
	// unmount does not propagate back.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	return unix.Chdir("/")
}

// MaskPath hides path (absolute, in the current root): /dev/null over a
// file, an empty read-only tmpfs over a directory. Missing paths are fine.
func MaskPath(path string, tr *trace.Tracer) error {
	tr.Step("mask", "%s", path)
	err := unix.Mount("/dev/null", path, "", unix.MS_BIND, "")
	if errors.Is(err, unix.ENOTDIR) {
		err = unix.Mount("tmpfs", path, "tmpfs", unix.MS_RDONLY, "size=0")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mask %q: %w", path, err)
	}
	return nil
}

// ReadonlyPath bind-mounts path onto itself read-only. Missing paths are fine.
func ReadonlyPath(path string, tr *trace.Tracer) error {
	tr.Step("readonly", "%s", path)
	if err := unix.Mount(path, path, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("bind %q read-only: %w", path, err)
	}
	flags := uintptr(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY)
	var st unix.Statfs_t
	if unix.Statfs(path, &st) == nil {
		flags |= uintptr(st.Flags) & (NOSUID | NODEV | NOEXEC)
	}
	if err := unix.Mount("", path, "", flags, ""); err != nil {
		return fmt.Errorf("remount %q read-only: %w", path, err)
	}
	return nil
}
