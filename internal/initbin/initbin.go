// Package initbin carries the lean container init (cmd/cfs-init) inside
// bin/cfs and installs it where it can be executed.
//
// Every container start executes a container init: the same binary as cfs
// by default, whose 13 MB and 120-odd package initializers (registry
// client, compressors, digests, HTTP) cost about 1.5 ms before init does
// anything. `make build` builds cmd/cfs-init first (3 MB, 30 initializers)
// into payload/ with its SHA-256, and links that sum into bin/cfs (Stamp).
// Path installs the payload once per boot and version as
// Dir/cfs-init-<sum>, on tmpfs, so that it needs nothing from the disk.
// The file is mode 0755 and Dir 0711: under --userns remap init is exec'd
// by the container's root, an unprivileged host uid.
// A payload whose sum is not the linked one (left from an earlier build,
// or a plain `go build`, which links none) is never used: then init is
// cfs itself again, as before.
package initbin

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

//go:embed all:payload
var payload embed.FS

// Stamp is the SHA-256 of the payload this binary was built with, set by
// the linker (make build); empty means none.
var Stamp string

// Dir is where the init is installed (root's, on tmpfs).
var Dir = "/run/cfs"

const (
	binName = "payload/cfs-init"
	sumName = "payload/cfs-init.sha256"
	prefix  = "cfs-init-"
)

// Path returns the path of the installed lean init, installing it when it
// is not there, or "" when there is none to use: not built in, or it cannot
// be installed or executed here (then the caller uses its own binary).
// It checks the file at every call (three stat calls): a long-lived
// supervisor must not keep a path that another cfs version removed.
func Path() string {
	if Stamp == "" {
		return ""
	}
	p, err := Install(Dir, Stamp, payload)
	if err != nil {
		return ""
	}
	return p
}

// ErrNone means fsys holds no init built with stamp.
var ErrNone = errors.New("no lean init built in")

// Install installs the init of fsys (payload/cfs-init) as
// dir/cfs-init-<stamp> and returns that path. The file is reused when it
// is there with the payload's size, owned by root, mode 0755; otherwise it
// is written under a temporary name and renamed into place, and the inits
// of other versions installed over ten minutes before are removed.
func Install(dir, stamp string, fsys fs.FS) (string, error) {
	if len(stamp) != 64 {
		return "", ErrNone
	}
	sum, err := fs.ReadFile(fsys, sumName)
	if err != nil || strings.TrimSpace(string(sum)) != stamp {
		return "", ErrNone
	}
	src, err := fsys.Open(binName)
	if err != nil {
		return "", ErrNone
	}
	defer src.Close()
	st, err := src.Stat()
	if err != nil {
		return "", err
	}
	name := filepath.Join(dir, prefix+stamp[:16])
	installed := func() bool {
		var fi unix.Stat_t
		return unix.Stat(name, &fi) == nil && fi.Mode&unix.S_IFMT == unix.S_IFREG && fi.Uid == 0 &&
			fi.Mode&0o7777 == 0o755 && fi.Size == st.Size() && searchable(dir)
	}
	if installed() {
		return name, nil
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", err
	}
	if !searchable(dir) {
		if err := os.Chmod(dir, 0o711); err != nil {
			return "", err
		}
	}
	// One installer at a time: the first containers after a boot may all
	// start at once, and each would write its own copy.
	d, err := os.Open(dir)
	if err != nil {
		return "", err
	}
	defer d.Close()
	if err := unix.Flock(int(d.Fd()), unix.LOCK_EX); err != nil {
		return "", err
	}
	if installed() {
		return name, nil
	}
	var fsst unix.Statfs_t
	if err := unix.Statfs(dir, &fsst); err != nil {
		return "", err
	}
	if fsst.Flags&unix.ST_NOEXEC != 0 {
		return "", fmt.Errorf("%s is mounted noexec", dir)
	}
	tmp, err := os.CreateTemp(dir, "."+prefix+"*")
	if err != nil {
		return "", err
	}
	_, err = io.Copy(tmp, src)
	if err == nil {
		err = tmp.Chmod(0o755)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), name)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", fmt.Errorf("install container init: %w", err)
	}
	removeStale(dir, name, time.Now().Add(-staleAfter))
	return name, nil
}

// staleAfter: another version's init is removed when one is installed if
// it is older than this. Not younger ones: two builds used in turn (an
// upgrade, a benchmark of two versions) would otherwise remove each
// other's at every start.
const staleAfter = 10 * time.Minute

// removeStale removes the inits in dir other than keep that were
// installed before cutoff (running containers keep theirs open).
func removeStale(dir, keep string, cutoff time.Time) {
	old, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
	for _, o := range old {
		if fi, err := os.Stat(o); err == nil && o != keep && fi.ModTime().Before(cutoff) {
			os.Remove(o)
		}
	}
}

// searchable reports whether every user may traverse dir (to exec a file in
// it) and only root may change it.
func searchable(dir string) bool {
	var st unix.Stat_t
	return unix.Stat(dir, &st) == nil && st.Uid == 0 && st.Mode&0o001 != 0 && st.Mode&0o022 == 0
}
