package store

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// A name reservation is the file names/<name> holding the owner's ID. It is
// made by writing the ID into a temp file and hard-linking it into place:
// link(2) fails with EEXIST when the name is taken, so exactly one of any
// number of racing processes wins, and the file is never seen half-written.
//
// The creator holds a flock on the reservation until the container's
// directory exists. A reservation pointing at a missing directory while
// unlocked was left by a crash (between reserving and creating, or between
// removing the directory and the name) and may be reclaimed; one that is
// locked belongs to a Create in progress, and whoever wants to know waits.

// maxNameLen keeps names/<name> a legal file name (NAME_MAX is 255).
const maxNameLen = 255

// ValidateName checks a container name the way Docker does:
// [a-zA-Z0-9][a-zA-Z0-9_.-]*. Being a file name in names/ needs nothing
// more: no "/", and no leading "." that could clash with our temp files.
func ValidateName(name string) error {
	if name == "" {
		return errdefs.Invalidf("invalid container name \"\": names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*")
	}
	if len(name) > maxNameLen {
		return errdefs.Invalidf("invalid container name %q: longer than %d characters", name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return errdefs.Invalidf("invalid container name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
		}
	}
	return nil
}

// reservation is a name this process has just reserved and still locks.
type reservation struct {
	name string
	path string
	f    *os.File // holds the flock
}

// release unlocks the reservation; the name stays reserved.
func (r *reservation) release() { r.f.Close() }

// undo gives the name back after a failed Create or Rename. It must run
// before release: while we hold the lock nobody else can have replaced it.
func (r *reservation) undo() { _ = os.Remove(r.path) }

// reserve makes name belong to id, or fails with ErrConflict naming the
// owner. The returned reservation is locked; release it when the container
// directory exists.
func (s *Store) reserve(name, id string) (*reservation, error) {
	tmp, err := os.CreateTemp(s.namesDir(), ".tmp-")
	if err != nil {
		return nil, fmt.Errorf("reserving container name %q: %w", name, err)
	}
	defer os.Remove(tmp.Name()) // the link keeps the inode
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
		}
	}()
	if _, err := tmp.WriteString(id); err != nil {
		return nil, fmt.Errorf("reserving container name %q: %w", name, err)
	}
	// No fsync: a name file that a power loss empties is a crash leftover
	// like any other (unlocked, pointing nowhere) and is reclaimed.
	// Nobody else can see the file yet, so this does not wait; taking the
	// lock before the link means the name is never visible unlocked.
	if err := flock(tmp); err != nil {
		return nil, fmt.Errorf("reserving container name %q: %w", name, err)
	}
	path := filepath.Join(s.namesDir(), name)
	// Each retry follows the removal of a crash leftover; a bound keeps a
	// pathological race from spinning forever.
	for attempt := 0; attempt < 10; attempt++ {
		err := os.Link(tmp.Name(), path)
		if err == nil {
			ok = true
			return &reservation{name: name, path: path, f: tmp}, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("reserving container name %q: %w", name, err)
		}
		owner, free, err := s.reclaimIfStale(path)
		if err != nil {
			return nil, fmt.Errorf("reserving container name %q: %w", name, err)
		}
		if !free {
			return nil, errdefs.Conflictf("container name %q is already in use by container %q", name, owner)
		}
	}
	return nil, errdefs.Conflictf("container name %q is being created and removed concurrently; try again", name)
}

// reclaimIfStale inspects an existing reservation under its lock. It reports
// the owner and free=false when the owner exists, and free=true when the
// path is gone or was a crash leftover that it removed.
func (s *Store) reclaimIfStale(path string) (owner string, free bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", true, nil
	}
	if err != nil {
		return "", false, err
	}
	defer f.Close()
	// Waits for a Create in progress to finish or fail.
	if err := flock(f); err != nil {
		return "", false, err
	}
	if same, err := stillAt(f, path); errors.Is(err, fs.ErrNotExist) || err == nil && !same {
		return "", true, nil // removed or replaced meanwhile: look again
	} else if err != nil {
		return "", false, err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return "", false, err
	}
	owner = string(data)
	if isID(owner) {
		if _, err := os.Lstat(s.Dir(owner)); err == nil {
			return owner, false, nil
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", false, err
		}
	}
	// We hold the lock on the file the path names, so nobody else can be
	// removing or replacing it.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	return owner, true, nil
}

// removeName frees name if it still belongs to id. Someone else's
// reservation (the name was reclaimed as a leftover and reused) is left
// alone.
func (s *Store) removeName(name, id string) error {
	path := filepath.Join(s.namesDir(), name)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("releasing container name %q: %w", name, err)
	}
	defer f.Close()
	if err := flock(f); err != nil {
		return fmt.Errorf("releasing container name %q: %w", name, err)
	}
	// If the file we locked is no longer at path, our reservation is gone
	// either way: it was this file and someone reclaimed it, or it was
	// removed before we looked. Whatever is there now is not ours: only
	// Rename gives an existing ID a name, never the one it is giving up,
	// and Rename holds the container's lock.
	if same, err := stillAt(f, path); errors.Is(err, fs.ErrNotExist) || err == nil && !same {
		return nil
	} else if err != nil {
		return fmt.Errorf("releasing container name %q: %w", name, err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("releasing container name %q: %w", name, err)
	}
	if string(data) != id {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("releasing container name %q: %w", name, err)
	}
	return nil
}

// removeNamesOf frees every name that belongs to id, for a Delete that could
// not read the container's record. It reads the whole index, which is fine
// for this rare path.
func (s *Store) removeNamesOf(id string) error {
	ents, err := os.ReadDir(s.namesDir())
	if err != nil {
		return fmt.Errorf("reading container names: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.namesDir(), e.Name()))
		if err != nil || string(data) != id {
			continue
		}
		if err := s.removeName(e.Name(), id); err != nil {
			return err
		}
	}
	return nil
}

// nameOwner returns the ID that name is reserved for. No lock: the file's
// content is complete from the moment the name exists.
func (s *Store) nameOwner(name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(s.namesDir(), name))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("reading container name %q: %w", name, err)
	}
	if !isID(string(data)) {
		return "", fs.ErrNotExist // damaged; Create reclaims it
	}
	return string(data), nil
}

// reserveGenerated reserves a random Docker-style name for id. With about
// 2,500 combinations collisions are routine among a few dozen containers,
// so after a few tries a number is appended, as Docker does.
func (s *Store) reserveGenerated(id string) (*reservation, error) {
	const attempts = 100
	for i := 0; i < attempts; i++ {
		res, err := s.reserve(generateName(i), id)
		if errors.Is(err, errdefs.ErrConflict) {
			continue
		}
		return res, err
	}
	return nil, errdefs.Conflictf("could not find a free container name after %d attempts", attempts)
}

// generateName returns "adjective_surname", with a random number appended
// once retry reaches 3.
func generateName(retry int) string {
	for {
		name := adjectives[rand.IntN(len(adjectives))] + "_" + surnames[rand.IntN(len(surnames))]
		// Docker's tradition: Steve Wozniak is not boring.
		if name == "boring_wozniak" {
			continue
		}
		if retry >= 3 {
			name += strconv.Itoa(rand.IntN(1000))
		}
		return name
	}
}
