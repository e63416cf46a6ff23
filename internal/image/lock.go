package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// lockFile takes an exclusive flock on path, creating it. Close the file
// to release. flock locks belong to the open file description, so two
// goroutines of one process exclude each other as two processes do.
func lockFile(path string) (*os.File, error) {
	return flockFile(path, unix.LOCK_EX)
}

func flockFile(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock %s: %w", path, err)
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}

// lockIngest takes ingest.lock shared for the duration of an import or
// removal, which keeps temp files alive. When clean is set and nobody
// holds the lock, it first removes the ".tmp-*" files that crashed
// imports left behind.
func (s *Store) lockIngest(clean bool) (*os.File, error) {
	p := filepath.Join(s.root, "ingest.lock")
	if clean {
		if f, err := flockFile(p, unix.LOCK_EX|unix.LOCK_NB); err == nil {
			s.removeStale()
			// Not atomic (flock(2)), which is fine: our temps do not exist yet.
			if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err == nil {
				return f, nil
			}
			f.Close()
		}
	}
	return flockFile(p, unix.LOCK_SH)
}

// removeStale deletes leftovers of crashed imports and removals. Caller
// holds ingest.lock exclusively.
func (s *Store) removeStale() {
	for _, dir := range []string{s.blobDir(), s.layerDir(), s.root} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				os.RemoveAll(filepath.Join(dir, e.Name()))
			}
		}
	}
}

// writeFileAtomic replaces path with data: temp file, fsync, rename,
// fsync of the directory.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(0o644); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}
