package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// parseError marks a record file that exists but is not valid JSON.
type parseError struct {
	path string
	err  error
}

func (e *parseError) Error() string { return fmt.Sprintf("parsing record %q: %v", e.path, e.err) }
func (e *parseError) Unwrap() error { return e.err }

func readRecord(path string) (*Record, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, &parseError{path: path, err: err}
	}
	return &r, nil
}

func marshalRecord(r *Record) ([]byte, error) {
	data, err := json.MarshalIndent(r, "", "\t")
	if err != nil {
		return nil, fmt.Errorf("encoding record of container %s: %w", r.ID, err)
	}
	return append(data, '\n'), nil
}

// writeAtomic replaces dir/name with data: a reader sees the old file or the
// new one, never a torn one. Temp files start with "." so no reader looks
// at them, and one left by a crash is harmless.
func writeAtomic(dir, name string, data []byte, sync bool) (err error) {
	f, err := os.CreateTemp(dir, "."+name+"-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err := os.Chmod(f.Name(), 0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	// Without the fsync the rename could reach the disk before the data,
	// and a power loss would leave an empty record.
	if err := syncIf(f, sync); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), filepath.Join(dir, name))
}

// writeSynced creates a new file with data and fsyncs it.
func writeSynced(path string, data []byte, sync bool) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := syncIf(f, sync); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncIf(f *os.File, sync bool) error {
	if !sync {
		return nil
	}
	return f.Sync()
}

// syncDir makes a directory's new entries durable (fsync(2): syncing a file
// does not sync the entry that names it).
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func isNotEmpty(err error) bool { return errors.Is(err, syscall.ENOTEMPTY) }
