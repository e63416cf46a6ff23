package engine

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/store"
)

// A spare is a container init the supervisor spawns ahead of the next
// `cfs run -d`: a new ID, its cgroup in every hierarchy, init started in
// new mount, PID, UTS, IPC and network namespaces, its Go runtime up, its
// signals subscribed and its spec decoder built, waiting for a
// configuration. A run -d whose container needs nothing else at spawn time
// (no terminal, stdin, user namespace, host network, cgroup parent, memory
// limit or net_cls/net_prio) takes it: about 3 ms of its start (cgroup
// creation, clone3, exec and Go start-up of init) are then done, and the
// supervisor makes the next spare once the answer is sent.
//
// The cgroup of a spare exists before any record names it. A marker file,
// SparesDir/<id> holding the state root, does, flocked by the supervisor
// for the spare's life: sweepSpares (every cfs command, engine.New, for
// every root: cgroups are the machine's) removes the cgroup and marker of a
// spare whose supervisor died (init died with it: it exits with its
// parent). Once the container's record exists the marker goes. Markers are
// on tmpfs, as cgroups are: a reboot removes both.
type spare struct {
	id             string
	ctr            *runtime.Container
	stdout, stderr *os.File // read ends; init holds the write ends
	marker         *os.File // flocked
	markerPath     string
}

// spares holds the supervisor's spare (at most one); only the supervisor's
// engine makes them (EnableSpares).
type spares struct {
	mu      sync.Mutex
	on      bool
	closed  bool
	making  bool
	ready   *spare
	refills sync.WaitGroup
}

// EnableSpares makes the engine keep a spare init for run -d (the
// supervisor's engine, which calls CloseSpares before it exits).
func (e *Engine) EnableSpares() {
	e.spares.mu.Lock()
	e.spares.on = true
	e.spares.mu.Unlock()
}

// CloseSpares destroys the spare and makes no more.
func (e *Engine) CloseSpares() {
	s := &e.spares
	s.mu.Lock()
	s.closed = true // a refill finishing from now on destroys its spare
	s.mu.Unlock()
	s.refills.Wait()
	s.mu.Lock()
	sp := s.ready
	s.ready = nil
	s.mu.Unlock()
	if sp != nil {
		sp.destroy()
	}
}

// SparesDir holds the markers of spares (root's, on tmpfs).
var SparesDir = "/run/cfs/spares"

// spareCompatible reports whether o's container can start from a spare:
// everything runtime.Spawn takes from the spec and config must be what the
// spare was spawned with (spareSpec).
func spareCompatible(o *RunOptions) bool {
	r := o.Resources
	return !o.TTY && !o.Interactive && (o.Userns == "" || o.Userns == "host") &&
		(o.Network == "" || o.Network == "none") && r.CgroupParent == "" &&
		r.Memory == 0 && r.MemorySwap == 0 && r.MemoryReservation == 0
}

// takeSpare returns the spare for a container of o, or nil.
func (e *Engine) takeSpare(o *RunOptions) *spare {
	if !spareCompatible(o) {
		return nil
	}
	e.spares.mu.Lock()
	defer e.spares.mu.Unlock()
	sp := e.spares.ready
	e.spares.ready = nil
	return sp
}

// spareFits checks the prepared spec against the spare's (spareSpec): a
// spec that would spawn differently does not get the spare.
func spareFits(spec *specs.Spec, id string) bool {
	want := spareSpec(id)
	l := spec.Linux
	if l == nil || spec.Process == nil || spec.Process.Terminal || len(l.UIDMappings) > 0 ||
		l.CgroupsPath != want.Linux.CgroupsPath || runtime.MemoryLimited(spec) || usesNetCgroup(l.Resources) ||
		len(l.Namespaces) != len(want.Linux.Namespaces) {
		return false
	}
	for i, n := range l.Namespaces {
		if n != want.Linux.Namespaces[i] {
			return false
		}
	}
	return true
}

// spareSpec is what a spare is spawned with: the namespaces and cgroup of
// a default detached container (buildSpec).
func spareSpec(id string) *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{Args: []string{"true"}, Cwd: "/"},
		Linux: &specs.Linux{
			Namespaces:  containerNamespaces(false),
			CgroupsPath: "/cfs/" + id,
		},
	}
}

// refillSpare makes a spare in the background when there is none.
func (e *Engine) refillSpare() {
	s := &e.spares
	s.mu.Lock()
	if !s.on || s.closed || s.making || s.ready != nil {
		s.mu.Unlock()
		return
	}
	s.making = true
	s.refills.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.refills.Done()
		sp, err := e.makeSpare()
		s.mu.Lock()
		s.making = false
		if err == nil && (s.closed || s.ready != nil) {
			s.mu.Unlock()
			sp.destroy()
			return
		}
		if err == nil {
			s.ready = sp
		}
		s.mu.Unlock()
	}()
}

// makeSpare spawns a spare: marker first (flocked, then given its name),
// then the cgroup and init (runtime.Spawn).
func (e *Engine) makeSpare() (_ *spare, err error) {
	dir := SparesDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sp := &spare{id: store.NewID()}
	tmp, err := os.CreateTemp(dir, ".new-")
	if err != nil {
		return nil, err
	}
	if _, err := tmp.WriteString(e.Root); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	if err := unix.Flock(int(tmp.Fd()), unix.LOCK_EX); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	sp.markerPath = filepath.Join(dir, sp.id)
	if err := os.Rename(tmp.Name(), sp.markerPath); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	sp.marker = tmp
	defer func() {
		if err != nil {
			sp.destroy()
		}
	}()
	var writers []*os.File
	defer func() {
		for _, w := range writers {
			w.Close()
		}
	}()
	for _, r := range []**os.File{&sp.stdout, &sp.stderr} {
		pr, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		*r, writers = pr, append(writers, pw)
	}
	cfg := &runtime.Config{ID: sp.id, Spec: spareSpec(sp.id), Stdout: writers[0], Stderr: writers[1],
		ExitWithParent: true, EarlyCgroup: true, Spare: true}
	if sp.ctr, err = runtime.Spawn(cfg); err != nil {
		return nil, err
	}
	return sp, nil
}

// claimed: the container's record names the spare's cgroup now; the
// marker goes.
func (sp *spare) claimed() {
	if sp.marker != nil {
		os.Remove(sp.markerPath)
		sp.marker.Close()
		sp.marker = nil
	}
}

// destroy kills the spare's init, removes its cgroup and marker.
func (sp *spare) destroy() {
	if sp.ctr != nil {
		sp.ctr.Destroy()
	}
	for _, f := range []*os.File{sp.stdout, sp.stderr} {
		if f != nil {
			f.Close()
		}
	}
	sp.claimed()
}

// sweepSpares removes what spares of dead supervisors left: their cgroups
// (unless a record names one: the container took it) and markers. A live
// supervisor's marker is flocked.
func sweepSpares() {
	dir := SparesDir
	ents, err := os.ReadDir(dir)
	if err != nil || len(ents) == 0 {
		return
	}
	for _, ent := range ents {
		name := ent.Name()
		p := filepath.Join(dir, name)
		if strings.HasPrefix(name, ".new-") {
			// A marker being made; stale once unlocked.
			name = ""
		}
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil {
			f.Close() // its supervisor runs
			continue
		}
		if name != "" && store.IsID(name) {
			root, _ := io.ReadAll(f)
			if _, err := os.Lstat(filepath.Join(string(root), "containers", name)); len(root) == 0 || errors.Is(err, os.ErrNotExist) {
				removeCgroup("/cfs/" + name)
			}
		}
		os.Remove(p)
		f.Close()
	}
}

// removeCgroup removes an empty cgroup at path in every hierarchy.
func removeCgroup(path string) {
	host, err := cgroups.DetectHost()
	if err != nil {
		return
	}
	if cg, err := cgroups.New(host, path, nil); err == nil {
		cg.Destroy()
	}
}
