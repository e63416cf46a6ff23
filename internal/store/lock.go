package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// Lock takes the container's exclusive lock, waiting for other holders in
// this or any other process, for operations that read, act and write (start,
// stop, rm). Call unlock exactly when done; calling it again is harmless.
// The lock is flock(2) on the directory <root>/<id> itself (no lock file to
// create: one inode less per container), so it dies with its process and a
// crash leaves nothing to clean up. It is not re-entrant: while holding it,
// use UpdateLocked, not Update or Rename.
//
// Locking a container that is deleted while we wait returns ErrNotFound.
func (s *Store) Lock(id string) (unlock func(), err error) {
	if !isID(id) {
		return nil, errdefs.Invalidf("invalid container ID %q: want 64 lowercase hex characters", id)
	}
	path := s.Dir(id)
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFoundf("no such container: %s", id)
		}
		return nil, fmt.Errorf("opening lock of container %s: %w", id, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking container %s: %w", id, err)
	}
	// We may have waited on a directory that Delete has since moved to
	// trash.
	if same, err := stillAt(f, path); err != nil || !same {
		f.Close()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("locking container %s: %w", id, err)
		}
		return nil, errdefs.NotFoundf("no such container: %s", id)
	}
	var once sync.Once
	// Closing the descriptor releases the flock.
	return func() { once.Do(func() { f.Close() }) }, nil
}

// stillAt reports whether path still names the file f has open. A lock taken
// on a file that was unlinked or replaced while we waited protects nothing.
func stillAt(f *os.File, path string) (bool, error) {
	held, err := f.Stat()
	if err != nil {
		return false, err
	}
	now, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	return os.SameFile(held, now), nil
}
