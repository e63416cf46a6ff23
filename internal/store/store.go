// Package store keeps cfs container records on disk: one directory per
// container holding an atomically replaced record.json, a name index that
// makes names unique across processes without a global lock, and a flock per
// container for multi-step operations.
//
// Layout under root (the engine passes $CFS_ROOT/containers):
//
//	<root>/<id>/              flock(2) target for Lock, Update and Rename
//	<root>/<id>/record.json   the Record, replaced by write-temp + fsync + rename
//	                          (directory entries are not fsynced; see Create)
//	<root>/<id>/...           engine-owned files (upper/, work/, logs)
//	<root>/names/<name>       the owning container's ID; created with link(2),
//	                          which fails if the name exists, so reservation is atomic
//	<root>/.tmp/              staging: a container directory is built here and
//	                          renamed into place, so <root>/<id> never lacks a record
//	<root>/.trash/            Delete renames a container here first, then removes it
//
// The lock is the container directory rather than a file in a volatile run
// dir so that the store needs only one root and works without root
// privileges; flock locks die with their process.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/mount"
)

// Docker's words for State.Status.
const (
	StatusCreated    = "created"
	StatusRunning    = "running"
	StatusPaused     = "paused"
	StatusRestarting = "restarting"
	StatusExited     = "exited"
	StatusDead       = "dead"
)

const (
	recordFile = "record.json"
	namesDir   = "names"
	stagingDir = ".tmp"
	trashDir   = ".trash"

	// Staging directories older than this were left by a crashed Create; a
	// live Create holds one for milliseconds.
	staleStagingAge = 10 * time.Minute
)

// Record is one container as the engine sees it.
type Record struct {
	ID      string            `json:"Id"`    // 64 hex chars, random
	Name    string            `json:"Name"`  // unique; change it only with Rename
	Image   string            `json:"Image"` // image name as the user gave it
	ImageID string            `json:"ImageID"`
	Command []string          `json:"Command"`
	Created time.Time         `json:"Created"`
	State   State             `json:"State"`
	Labels  map[string]string `json:"Labels,omitempty"`
	// Extra is engine-owned (run options, spec path...); the store does not
	// interpret it.
	Extra json.RawMessage `json:"Config,omitempty"`
}

// State is the container's lifecycle state, in Docker's field names.
type State struct {
	Status     string // one of the Status* constants
	Running    bool
	Paused     bool
	OOMKilled  bool
	Pid        int
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
	Error      string
}

// Store is a directory of container records. It is safe for concurrent use
// by many goroutines and many processes sharing the same root.
type Store struct {
	root string
	// NoSync skips the fsync of records: for containers that are removed
	// when they exit (run --rm), whose records never need to outlive a
	// power loss. Crash-safety against killed processes stays (rename).
	NoSync bool
}

// Open creates root and its bookkeeping directories if needed, and removes
// what crashed Creates and Deletes left behind.
func Open(root string) (*Store, error) {
	if root == "" {
		return nil, errdefs.Invalidf("container store root is empty")
	}
	s := &Store{root: root}
	for _, d := range []string{root, s.namesDir(), s.stagingDir(), s.trashDir()} {
		_, err := os.Lstat(d)
		if err == nil {
			continue
		}
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("creating container store directory %q: %w", d, err)
		}
		if d == root || d == s.stagingDir() {
			// Container directories are made in staging (and the
			// engine's in root): spread them (see MarkTopDir).
			mount.MarkTopDir(d)
		}
	}
	s.sweep()
	return s, nil
}

// sweep removes leftovers of crashed operations. Best effort: a failure here
// only wastes disk, and the next Open tries again.
func (s *Store) sweep() {
	// Everything in trash was already made invisible by a Delete; a Delete
	// racing with us copes with its directory vanishing.
	if ents, err := os.ReadDir(s.trashDir()); err == nil {
		for _, e := range ents {
			_ = os.RemoveAll(filepath.Join(s.trashDir(), e.Name()))
		}
	}
	// A staging directory may belong to a Create in progress in another
	// process, so only old ones go.
	if ents, err := os.ReadDir(s.stagingDir()); err == nil {
		for _, e := range ents {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > staleStagingAge {
				_ = os.RemoveAll(filepath.Join(s.stagingDir(), e.Name()))
			}
		}
	}
}

// Dir returns the container's directory, where the engine keeps its own
// per-container files. id must be a full ID (resolve references with Get).
func (s *Store) Dir(id string) string { return filepath.Join(s.root, id) }

func (s *Store) namesDir() string   { return filepath.Join(s.root, namesDir) }
func (s *Store) stagingDir() string { return filepath.Join(s.root, stagingDir) }
func (s *Store) trashDir() string   { return filepath.Join(s.root, trashDir) }

// Create stores a new container record and reserves its name. It fills in
// r.ID (when empty), r.Name (a random "adjective_surname" when empty),
// r.Created (now, when zero) and r.State.Status ("created", when empty).
// A taken name or ID is an ErrConflict.
func (s *Store) Create(r *Record) error {
	synced, err := s.CreateUnsynced(r)
	if err != nil {
		return err
	}
	return synced()
}

// CreateUnsynced is Create without waiting for the record's fsync: the
// record is in place (and complete for every process) when it returns, and
// synced makes it durable. A container start runs synced beside its other
// work (about half a millisecond on the development VM) and calls it before
// it reports the container created: the fsync still precedes the answer,
// which is all it can promise, as the new directory entry is not synced.
func (s *Store) CreateUnsynced(r *Record) (synced func() error, err error) {
	return s.CreateUnsyncedIn(r, "")
}

// CreateUnsyncedIn is CreateUnsynced with the container's directory made
// beforehand (dir, on the store's file system, outside the store: a ready
// spare's, holding the files of a container set up ahead of its record).
// The record is written into it and dir is renamed into place; on error,
// dir is left where it was. dir "" is CreateUnsynced.
func (s *Store) CreateUnsyncedIn(r *Record, dir string) (synced func() error, err error) {
	if r == nil {
		return nil, errdefs.Invalidf("creating container: nil record")
	}
	if r.ID == "" {
		r.ID = NewID()
	} else if !isID(r.ID) {
		return nil, errdefs.Invalidf("invalid container ID %q: want 64 lowercase hex characters", r.ID)
	}
	r.Name = strings.TrimPrefix(r.Name, "/")
	if r.Name != "" {
		if err := ValidateName(r.Name); err != nil {
			return nil, err
		}
	}
	if r.Created.IsZero() {
		r.Created = time.Now().UTC()
	}
	if r.State.Status == "" {
		r.State.Status = StatusCreated
	}
	// Fail fast before reserving a name; materialize checks again atomically.
	if _, err := os.Lstat(s.Dir(r.ID)); err == nil {
		return nil, errdefs.Conflictf("container ID %s already exists", r.ID)
	}

	var res *reservation
	if r.Name != "" {
		res, err = s.reserve(r.Name, r.ID)
	} else {
		res, err = s.reserveGenerated(r.ID)
		if err == nil {
			r.Name = res.name
		}
	}
	if err != nil {
		return nil, err
	}
	// The reservation stays locked until the directory exists, so that a
	// concurrent Create does not mistake it for one left by a crash.
	defer res.release()
	if err := s.materialize(r, dir); err != nil {
		res.undo()
		return nil, err
	}
	path, noSync := filepath.Join(s.Dir(r.ID), recordFile), s.NoSync
	return func() error {
		if noSync {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		return f.Sync()
	}, nil
}

// materialize builds the container directory in staging (or completes
// made, when set) and renames it into place, so <root>/<id> appears
// atomically with its record.
func (s *Store) materialize(r *Record, made string) error {
	data, err := marshalRecord(r)
	if err != nil {
		return err
	}
	stage := made
	if stage == "" {
		if stage, err = os.MkdirTemp(s.stagingDir(), r.ID+"-"); err != nil {
			return fmt.Errorf("creating staging directory for container %s: %w", r.ID, err)
		}
	}
	moved := false
	defer func() {
		if moved {
			return
		}
		if made == "" {
			_ = os.RemoveAll(stage)
		} else {
			_ = os.Remove(filepath.Join(made, recordFile))
		}
	}()
	// Synced by the caller (CreateUnsynced).
	if err := writeSynced(filepath.Join(stage, recordFile), data, false); err != nil {
		return fmt.Errorf("writing record of container %s: %w", r.ID, err)
	}
	// The directory entries are not synced: fsync costs a container start
	// about half a millisecond each, and a container whose creation a power
	// loss undoes simply never existed.
	// rename(2) refuses to replace a non-empty directory, which is what a
	// live container's directory always is.
	if err := os.Rename(stage, s.Dir(r.ID)); err != nil {
		if errors.Is(err, fs.ErrExist) || isNotEmpty(err) {
			return errdefs.Conflictf("container ID %s already exists", r.ID)
		}
		return fmt.Errorf("creating directory of container %s: %w", r.ID, err)
	}
	moved = true
	return nil
}

// Get finds a container by full ID, exact name (a leading "/" is ignored, as
// Docker does) or unique ID prefix, in that order. A record that exists but
// fails to parse is returned with State.Status "dead" and State.Error set,
// so that it can still be inspected and removed.
func (s *Store) Get(ref string) (*Record, error) {
	ref = strings.TrimPrefix(ref, "/")
	if ref == "" {
		return nil, errdefs.Invalidf("empty container name or ID")
	}
	if isID(ref) {
		r, err := s.load(ref)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return r, err
		}
	}
	if ValidateName(ref) == nil {
		r, err := s.getByName(ref)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return r, err
		}
	}
	if isHex(ref) {
		return s.getByPrefix(ref)
	}
	return nil, errdefs.NotFoundf("no such container: %s", ref)
}

// getByName reads one name file and one record, never the whole store. An
// error satisfying fs.ErrNotExist means "try the next kind of lookup".
func (s *Store) getByName(name string) (*Record, error) {
	id, err := s.nameOwner(name)
	if err != nil {
		return nil, err
	}
	r, err := s.load(id)
	if err != nil {
		return nil, err
	}
	// Between Rename's record write and its removal of the old name, the old
	// name still points here; the record is the truth. A corrupt record has
	// no name to compare, so trust the index.
	if r.Name != name && r.State.Error == "" {
		return nil, fs.ErrNotExist
	}
	return r, nil
}

func (s *Store) getByPrefix(prefix string) (*Record, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	var matches []string
	for _, id := range ids {
		if strings.HasPrefix(id, prefix) {
			matches = append(matches, id)
		}
	}
	switch len(matches) {
	case 0:
		return nil, errdefs.NotFoundf("no such container: %s", prefix)
	case 1:
		r, err := s.load(matches[0])
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFoundf("no such container: %s", prefix)
		}
		return r, err
	default:
		return nil, errdefs.Invalidf("container ID prefix %q is ambiguous (%d matches)", prefix, len(matches))
	}
}

// List returns every container, newest first. Records that fail to parse are
// included as "dead" with State.Error saying why.
func (s *Store) List() ([]*Record, error) {
	ids, err := s.ids()
	if err != nil {
		return nil, err
	}
	out := make([]*Record, 0, len(ids))
	for _, id := range ids {
		r, err := s.load(id)
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted while we listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.After(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// ids lists the container directories; other entries (names/, staging,
// trash, anything foreign) are not containers.
func (s *Store) ids() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("reading container store %q: %w", s.root, err)
	}
	ids := make([]string, 0, len(ents))
	for _, e := range ents {
		if e.IsDir() && isID(e.Name()) {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

// Update runs fn on the current record under the container's lock and
// writes the result atomically. fn's error is returned as is and nothing is
// written. fn must not change ID or Name (use Rename).
//
// Locks are not re-entrant: a caller already holding Lock(id) must use
// UpdateLocked, or it deadlocks.
func (s *Store) Update(id string, fn func(*Record) error) error {
	unlock, err := s.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	return s.UpdateLocked(id, fn)
}

// UpdateLocked is Update for a caller that already holds Lock(id), for
// multi-step operations such as "lock, start the process, record its pid".
func (s *Store) UpdateLocked(id string, fn func(*Record) error) error {
	return s.update(id, fn, !s.NoSync)
}

// UpdateStateLocked is UpdateLocked without the fsync: for state a crash
// leaves stale anyway and the engine corrects from the process table (a
// running container's pid). It keeps the start of a container off the
// disk's flush latency.
func (s *Store) UpdateStateLocked(id string, fn func(*Record) error) error {
	return s.update(id, fn, false)
}

func (s *Store) update(id string, fn func(*Record) error, sync bool) error {
	if !isID(id) {
		return errdefs.Invalidf("invalid container ID %q: want 64 lowercase hex characters", id)
	}
	r, err := s.loadStrict(id)
	if err != nil {
		return err
	}
	name := r.Name
	if err := fn(r); err != nil {
		return err
	}
	if r.ID != id || r.Name != name {
		return errdefs.Invalidf("updating container %s: ID and name cannot change in an update (use Rename)", id)
	}
	return s.writeRecord(r, sync)
}

// Rename changes a container's name. The new name is reserved before the
// old one is released, so the container never has no name, and a name taken
// by another container is an ErrConflict. It takes the container's lock.
func (s *Store) Rename(id, newName string) error {
	newName = strings.TrimPrefix(newName, "/")
	if err := ValidateName(newName); err != nil {
		return err
	}
	unlock, err := s.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.loadStrict(id)
	if err != nil {
		return err
	}
	if r.Name == newName {
		return errdefs.Invalidf("renaming container %s: it is already named %q", id, newName)
	}
	res, err := s.reserve(newName, id)
	if err != nil {
		return err
	}
	old := r.Name
	r.Name = newName
	if err := s.writeRecord(r, !s.NoSync); err != nil {
		res.undo()
		res.release()
		return err
	}
	// The directory exists, so nobody can take the new reservation for a
	// crash leftover: no need to keep it locked.
	res.release()
	if old != "" {
		if err := s.removeName(old, id); err != nil {
			return fmt.Errorf("renaming container %s: releasing old name: %w", id, err)
		}
	}
	return nil
}

// Delete removes the container's directory (with the engine's files in it)
// and frees its name. It does not take the container's lock, so it may be
// called while holding Lock(id); an Update racing with it fails with
// ErrNotFound. The engine must unmount anything under Dir(id) first.
func (s *Store) Delete(id string) error {
	if !isID(id) {
		return errdefs.Invalidf("invalid container ID %q: want 64 lowercase hex characters", id)
	}
	// One rename makes the container invisible to every lookup at once; the
	// slow removal happens out of sight, and a crash during it is swept by
	// the next Open.
	trash := filepath.Join(s.trashDir(), id+"-"+randomHex(8))
	if err := os.Rename(s.Dir(id), trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return errdefs.NotFoundf("no such container: %s", id)
		}
		return fmt.Errorf("deleting container %s: %w", id, err)
	}
	// Nobody can write the record any more, so the name in it is final.
	if r, err := readRecord(filepath.Join(trash, recordFile)); err == nil && r.Name != "" {
		if err := s.removeName(r.Name, id); err != nil {
			return fmt.Errorf("deleting container %s: %w", id, err)
		}
	} else if err := s.removeNamesOf(id); err != nil {
		return fmt.Errorf("deleting container %s: %w", id, err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("deleting container %s: removing %q (the next start-up retries): %w", id, trash, err)
	}
	return nil
}

// load reads a record, turning a parse failure into a "dead" placeholder.
// A missing container is an error satisfying fs.ErrNotExist.
func (s *Store) load(id string) (*Record, error) {
	r, err := readRecord(filepath.Join(s.Dir(id), recordFile))
	var perr *parseError
	switch {
	case err == nil:
		return r, nil
	case errors.As(err, &perr):
		return s.placeholder(id, err), nil
	case errors.Is(err, fs.ErrNotExist):
		// Directories only appear complete (see materialize); one without a
		// record was damaged by hand or by the disk, and must be shown.
		if _, serr := os.Stat(s.Dir(id)); serr == nil {
			return s.placeholder(id, err), nil
		}
		return nil, err
	default:
		return nil, fmt.Errorf("reading container %s: %w", id, err)
	}
}

// loadStrict reads a record for modification: a corrupt one cannot be
// safely rewritten, and a missing one is ErrNotFound.
func (s *Store) loadStrict(id string) (*Record, error) {
	r, err := readRecord(filepath.Join(s.Dir(id), recordFile))
	switch {
	case err == nil:
		return r, nil
	case errors.Is(err, fs.ErrNotExist):
		return nil, errdefs.NotFoundf("no such container: %s", id)
	default:
		return nil, fmt.Errorf("reading container %s: %w", id, err)
	}
}

// placeholder stands in for a record that cannot be read.
func (s *Store) placeholder(id string, cause error) *Record {
	r := &Record{ID: id, State: State{Status: StatusDead, Error: cause.Error()}}
	if info, err := os.Stat(s.Dir(id)); err == nil {
		r.Created = info.ModTime().UTC()
	}
	return r
}

// writeRecord replaces record.json atomically. The directory is not synced:
// a crash loses at most this update, never the record.
func (s *Store) writeRecord(r *Record, sync bool) error {
	data, err := marshalRecord(r)
	if err != nil {
		return err
	}
	err = writeAtomic(s.Dir(r.ID), recordFile, data, sync)
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFoundf("no such container: %s", r.ID)
	}
	if err != nil {
		return fmt.Errorf("writing record of container %s: %w", r.ID, err)
	}
	return nil
}
