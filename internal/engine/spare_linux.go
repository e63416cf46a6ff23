package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/snapshot"
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
	// ready, when set: the spare was set up as a container of the
	// supervisor's last run -d (see readySpare).
	ready *readySpare
}

// A ready spare goes one step further: once the supervisor has started a
// container with options that fit a spare, the next spare is set up as a
// container of the same image and options, without its program: its
// directory (writable layer, /etc files, control socket), and in init's
// mount namespace the overlay root, /proc, /dev, /sys, the bind mounts,
// pivot_root, masked paths, hostname and lo, up to "ready". A run -d whose
// spec differs from that only in what init applies at start (the process:
// command, environment, user, working directory, capabilities; labels)
// takes it: the store renames its directory into place with the record
// in it, config.json gets the final spec, and init starts with that spec
// (runtime.StartWith). About 2 ms of the start (init's mounts, the
// container's files) happened before the command was typed.
type readySpare struct {
	dir     string // <root>/containers/.spares/<id>
	imageID string
	layers  []layerStamp
	remove  bool   // --rm: a volatile writable layer
	key     []byte // setupKey of its spec, as in the store's directory
}

// layerStamp identifies an unpacked layer directory: a layer removed and
// unpacked again (rmi, then pull) is another directory for the spare's
// overlay, which still holds the old one.
type layerStamp struct {
	path string
	ino  uint64
}

func stampLayers(layers []string) ([]layerStamp, error) {
	out := make([]layerStamp, len(layers))
	for i, l := range layers {
		var st unix.Stat_t
		if err := unix.Stat(l, &st); err != nil {
			return nil, err
		}
		out[i] = layerStamp{l, st.Ino}
	}
	return out, nil
}

// setupKey is what init does before start with spec: spec without its
// process and annotations (applied at start), encoded, with the container
// directory dir written as containerDir.
func setupKey(spec *specs.Spec, dir, containerDir string) ([]byte, error) {
	s := *spec
	s.Process, s.Annotations = nil, nil
	b, err := json.Marshal(&s)
	if err != nil {
		return nil, err
	}
	if dir != containerDir {
		b = bytes.ReplaceAll(b, []byte(dir+"/"), []byte(containerDir+"/"))
	}
	return b, nil
}

// fits reports whether pr, prepared for the spare's ID, can start from the
// ready spare: same image (the same layer directories), same writable
// layer kind, and a spec that init set up the same way.
func (r *readySpare) fits(pr *prepared) bool {
	if pr.img == nil || pr.img.ID.String() != r.imageID || pr.opts.Remove != r.remove || len(pr.img.Layers) != len(r.layers) {
		return false
	}
	now, err := stampLayers(pr.img.Layers)
	if err != nil {
		return false
	}
	for i := range now {
		if now[i] != r.layers[i] {
			return false
		}
	}
	key, err := setupKey(pr.spec, pr.dir, pr.dir)
	return err == nil && bytes.Equal(key, r.key)
}

// spareTemplate is the options a ready spare is made with, from those of
// a run -d: without what only its process or its record uses.
func spareTemplate(o *RunOptions) *RunOptions {
	t := *o
	t.Cmd, t.Entrypoint, t.Name, t.Env, t.EnvFiles = []string{"true"}, nil, "", nil, nil
	t.Workdir, t.User, t.Restart, t.LogOpts, t.LookupEnv, t.id, t.dir = "", "", "", nil, nil, "", ""
	return &t
}

// spares holds the supervisor's spare (at most one); only the supervisor's
// engine makes them (EnableSpares).
type spares struct {
	mu     sync.Mutex
	on     bool
	closed bool
	making bool
	// made is closed when the spare being made is ready (or failed).
	made    chan struct{}
	ready   *spare
	refills sync.WaitGroup
	// template: the options of the last run -d that fit a spare, which
	// the next spares are set up for (readySpare).
	template *RunOptions
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

// takeSpare returns the spare for a container of o, or nil. A spare being
// made is waited for: it is further on than a new init would be.
func (e *Engine) takeSpare(o *RunOptions) *spare {
	if !spareCompatible(o) {
		return nil
	}
	s := &e.spares
	s.mu.Lock()
	if s.making && s.ready == nil {
		made := s.made
		s.mu.Unlock()
		select {
		case <-made:
		case <-time.After(spareWait):
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	sp := s.ready
	s.ready = nil
	return sp
}

// spareWait bounds how long a run -d waits for the spare being made (a
// few milliseconds, unless the machine is very busy).
const spareWait = 100 * time.Millisecond

// keepTemplate makes the next spares ready spares for containers like
// o's, which started from a spare or could have.
func (e *Engine) keepTemplate(o *RunOptions) {
	t := spareTemplate(o)
	e.spares.mu.Lock()
	e.spares.template = t
	e.spares.mu.Unlock()
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
	s.made = make(chan struct{})
	made, tmpl := s.made, s.template
	s.refills.Add(1)
	s.mu.Unlock()
	go func() {
		defer s.refills.Done()
		defer close(made)
		sp, err := e.makeSpare(tmpl)
		if err != nil && tmpl != nil {
			// Its options do not make a container now (its image
			// was removed, say): back to bare spares until the next
			// run -d says which.
			e.spares.mu.Lock()
			if e.spares.template == tmpl {
				e.spares.template = nil
			}
			e.spares.mu.Unlock()
			sp, err = e.makeSpare(nil)
		}
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
// then the cgroup and init (runtime.Spawn), and with tmpl, the container's
// files and set-up (a ready spare).
func (e *Engine) makeSpare(tmpl *RunOptions) (_ *spare, err error) {
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
	if tmpl != nil {
		return sp, e.setUpSpare(sp, tmpl, writers[0], writers[1])
	}
	cfg := &runtime.Config{ID: sp.id, Spec: spareSpec(sp.id), Stdout: writers[0], Stderr: writers[1],
		ExitWithParent: true, EarlyCgroup: true, Spare: true}
	if sp.ctr, err = runtime.Spawn(cfg); err != nil {
		return nil, err
	}
	return sp, nil
}

// sparesDir holds the directories of ready spares, in the store's file
// system (they are renamed into it) but outside it (no record yet).
func (e *Engine) sparesDir() string { return sparesDirOf(e.Root) }

// sparesDirOf is sparesDir of the state root root.
func sparesDirOf(root string) string { return filepath.Join(root, "containers", ".spares") }

// setUpSpare makes sp a ready spare for containers of tmpl: their files in
// its own directory, init spawned and set up to "ready".
func (e *Engine) setUpSpare(sp *spare, tmpl *RunOptions, stdout, stderr *os.File) error {
	o := *tmpl
	o.id, o.dir = sp.id, filepath.Join(e.sparesDir(), sp.id)
	pr, err := e.prepare(&o, 0, 0)
	if err != nil {
		return err
	}
	if !spareFits(pr.spec, sp.id) {
		return errors.New("the template does not fit a spare")
	}
	stamps, err := stampLayers(pr.img.Layers)
	if err != nil {
		return err
	}
	key, err := setupKey(pr.spec, pr.dir, e.Containers.Dir(sp.id))
	if err != nil {
		return err
	}
	if _, err := os.Lstat(e.sparesDir()); err != nil {
		if err := os.MkdirAll(e.sparesDir(), 0o700); err != nil {
			return err
		}
		mount.MarkTopDir(e.sparesDir())
	}
	if err := os.Mkdir(pr.dir, 0o700); err != nil {
		return err
	}
	sp.ready = &readySpare{dir: pr.dir, imageID: pr.img.ID.String(), layers: stamps, remove: o.Remove}
	// The files are made while init starts; the control socket reaches
	// it with its configuration.
	filesDone := make(chan error, 1)
	go func() { filesDone <- e.materializeFiles(pr) }()
	cfg := &runtime.Config{ID: sp.id, Spec: pr.spec, Stdout: stdout, Stderr: stderr,
		ExitWithParent: true, EarlyCgroup: true, Spare: true}
	sp.ctr, err = runtime.Spawn(cfg)
	if ferr := <-filesDone; err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	cfg.SpecJSON, cfg.Rootfs, cfg.RootfsMounts, cfg.Bundle = pr.specJSON, pr.rootfs, pr.rootfsMounts, pr.dir
	if o.Remove {
		cfg.RootfsMounts = snapshot.Volatile(cfg.RootfsMounts)
	}
	if cfg.Control, err = runtime.ListenControl(controlPath(pr.dir)); err != nil {
		return err
	}
	defer cfg.Control.Close() // init has its own copy
	if err := e.setup(sp.ctr, cfg); err != nil {
		return err
	}
	sp.ready.key = key
	return nil
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

// destroy kills the spare's init, removes its cgroup, directory and
// marker.
func (sp *spare) destroy() {
	if sp.ctr != nil {
		sp.ctr.Destroy()
	}
	if sp.ready != nil {
		os.RemoveAll(sp.ready.dir) // init's mounts went with it
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
			if len(root) > 0 {
				// A ready spare's directory (its init, and with it
				// the mounts, died with the supervisor).
				os.RemoveAll(filepath.Join(sparesDirOf(string(root)), name))
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
