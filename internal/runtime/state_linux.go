package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/mount"
)

// The OCI runtime's state: one directory per container under a root
// (cfs-runtime --root, default /run/cfs-runtime), holding
//
//	state.json   ContainerState, replaced atomically (write + rename)
//	config.json  the spec the container was created with (for exec
//	             defaults, update, and poststop hooks at delete)
//	ctl.sock     init's control socket (control_linux.go)
//	lock         flock'ed by every command that changes the container
//
// Nothing here is authoritative about liveness: the status is derived
// from init's process (its start time guards against pid reuse) and the
// cgroup freezer each time it is asked.

// ContainerState is what state.json holds.
type ContainerState struct {
	ID  string `json:"id"`
	Pid int    `json:"pid"`
	// PidStart is init's start time in clock ticks since boot
	// (/proc/PID/stat field 22): a pid reused by another process after
	// init's death has another start time.
	PidStart    uint64            `json:"pidStart"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	CgroupPath  string            `json:"cgroupPath"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Creating is set until create has finished, Started once start has.
	Creating bool `json:"creating,omitempty"`
	Started  bool `json:"started,omitempty"`
	// OwnPidNS: init is PID 1 of a PID namespace of its own, so killing
	// it kills every process of the container.
	OwnPidNS bool `json:"ownPidNs,omitempty"`
	// Poststart and Poststop say whether the spec has such hooks (so that
	// start and delete read config.json only then).
	Poststart bool `json:"poststart,omitempty"`
	Poststop  bool `json:"poststop,omitempty"`
	// SharedMountNS: the container has no mount namespace of its own; its
	// mounts are in the runtime's and delete unmounts them.
	SharedMountNS bool   `json:"sharedMountNs,omitempty"`
	Owner         string `json:"owner,omitempty"`
}

// StateRoot is the directory holding one directory per container.
type StateRoot string

// validIDChar: letters, digits and _ + - . (runc's ^[\w+\-.]+$). A loop,
// not a regexp compiled at every process start (container inits too).
func validIDChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '+' || c == '-' || c == '.'
}

func validIDChars(id string) bool {
	if id == "" {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !validIDChar(id[i]) {
			return false
		}
	}
	return true
}

// CheckID refuses IDs that are not usable as one path component.
func CheckID(id string) error {
	if id == "" {
		return errdefs.Invalidf("container ID is empty")
	}
	if len(id) > 1024 || !validIDChars(id) || id == "." || id == ".." {
		return errdefs.Invalidf("container ID %q: invalid (letters, digits, _ + - . only)", id)
	}
	return nil
}

// Dir returns the container's state directory.
func (r StateRoot) Dir(id string) string { return filepath.Join(string(r), id) }

// StateLock is a held per-container lock.
type StateLock struct{ fd int }

// Unlock releases the lock.
func (l *StateLock) Unlock() {
	if l != nil && l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
}

// Create makes the container's directory and returns it locked; an
// existing container is an errdefs conflict.
func (r StateRoot) Create(id string) (*StateLock, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(string(r)); err != nil {
		if err := os.MkdirAll(string(r), 0o711); err != nil {
			return nil, fmt.Errorf("state root %s: %w", r, err)
		}
		// One directory per container, made and removed by the hundred:
		// spread them (see mount.MarkTopDir).
		mount.MarkTopDir(string(r))
	}
	if err := os.Mkdir(r.Dir(id), 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, errdefs.Conflictf("container %q already exists", id)
		}
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	return r.lock(id)
}

// Lock locks an existing container (errdefs not-found otherwise).
func (r StateRoot) Lock(id string) (*StateLock, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	return r.lock(id)
}

// lock takes flock(2) on the container's state directory itself (a lock
// file would cost an inode per container).
func (r StateRoot) lock(id string) (*StateLock, error) {
	fd, err := unix.Open(r.Dir(id), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, errdefs.NotFoundf("container does not exist: %q", id)
		}
		return nil, fmt.Errorf("lock container %q: %w", id, err)
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock container %q: %w", id, err)
	}
	return &StateLock{fd: fd}, nil
}

// Load reads a container's state.
func (r StateRoot) Load(id string) (*ContainerState, error) {
	if err := CheckID(id); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(r.Dir(id), "state.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, errdefs.NotFoundf("container does not exist: %q", id)
		}
		return nil, fmt.Errorf("reading state of %q: %w", id, err)
	}
	var st ContainerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("reading state of %q: %w", id, err)
	}
	return &st, nil
}

// Save writes st atomically.
func (r StateRoot) Save(st *ContainerState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(r.Dir(st.ID), "state.json"), b)
}

// SaveSpec stores the container's spec (config.json in its directory).
func (r StateRoot) SaveSpec(id string, spec []byte) error {
	return writeAtomic(filepath.Join(r.Dir(id), "config.json"), spec)
}

// LoadSpec reads the spec stored by SaveSpec.
func (r StateRoot) LoadSpec(id string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(r.Dir(id), "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading config of %q: %w", id, err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading config of %q: %w", id, err)
	}
	return &s, nil
}

// ControlPath is the path of the container's control socket.
func (r StateRoot) ControlPath(id string) string { return filepath.Join(r.Dir(id), "ctl.sock") }

// Remove deletes the container's directory.
func (r StateRoot) Remove(id string) error {
	if err := CheckID(id); err != nil {
		return err
	}
	return os.RemoveAll(r.Dir(id))
}

// List returns the IDs of the containers under the root.
func (r StateRoot) List() ([]string, error) {
	ents, err := os.ReadDir(string(r))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && CheckID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	return ids, nil
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// ProcStat returns a process's start time (clock ticks since boot) and
// state letter from /proc/PID/stat.
func ProcStat(pid int) (start uint64, state byte, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) is in parentheses and may contain
	// spaces and parentheses: fields 3.. follow the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64) // field 22
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return start, f[0][0], nil
}

// InitAlive reports whether the container's init still runs: the pid
// exists, has init's start time, and is not a zombie.
func (st *ContainerState) InitAlive() bool {
	if st.Pid <= 0 {
		return false
	}
	start, state, err := ProcStat(st.Pid)
	if err != nil || start != st.PidStart {
		return false
	}
	return state != 'Z' && state != 'X'
}

// Cgroup returns a manager for the container's cgroup on this host.
func (st *ContainerState) Cgroup() (cgroups.Manager, error) {
	h, err := cgroups.DetectHost()
	if err != nil {
		return nil, err
	}
	return cgroups.New(h, st.CgroupPath, nil)
}

// Status derives the OCI status: creating, created (init waits for
// start), running, paused (cgroup frozen) or stopped (init gone or a
// zombie).
func (st *ContainerState) Status() specs.ContainerState {
	if !st.InitAlive() {
		return specs.StateStopped
	}
	if st.Creating {
		return specs.StateCreating
	}
	if st.frozen() {
		return "paused"
	}
	if !st.Started {
		return specs.StateCreated
	}
	return specs.StateRunning
}

// frozen reads the freezer: v1 freezer.state, or v2 cgroup.freeze.
func (st *ContainerState) frozen() bool {
	cg, err := st.Cgroup()
	if err != nil {
		return false
	}
	paths := cg.Paths()
	if p, ok := paths["freezer"]; ok {
		b, err := os.ReadFile(filepath.Join(p, "freezer.state"))
		return err == nil && strings.TrimSpace(string(b)) != "THAWED"
	}
	if p, ok := paths["unified"]; ok {
		b, err := os.ReadFile(filepath.Join(p, "cgroup.freeze"))
		return err == nil && strings.TrimSpace(string(b)) == "1"
	}
	return false
}

// OCI returns the state as the runtime spec defines it (state.md).
func (st *ContainerState) OCI() *specs.State {
	s := &specs.State{
		Version: specs.Version, ID: st.ID, Status: st.Status(), Bundle: st.Bundle,
		Annotations: st.Annotations,
	}
	if s.Status != specs.StateStopped {
		s.Pid = st.Pid
	}
	return s
}
