package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/logs"
	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/snapshot"
	"github.com/cfs-org/cfs/internal/store"
	"github.com/cfs-org/cfs/internal/supervisor"
)

// Detached containers run under the state root's supervisor
// (internal/supervisor), which calls back into the engine through
// Backend: the engine starts the process with its output piped into the
// container's log, and records its exit.

// Backend returns the engine as the supervisor's backend.
func (e *Engine) Backend() supervisor.Backend { return backend{e} }

type backend struct{ e *Engine }

func (b backend) Start(id string, hub *supervisor.Hub) (supervisor.Handle, error) {
	return b.e.startDetached(id, false, hub)
}
func (b backend) Restart(id string, hub *supervisor.Hub) (supervisor.Handle, error) {
	return b.e.startDetached(id, true, hub)
}
func (b backend) Run(opts []byte, hub *supervisor.Hub) (string, supervisor.Handle, error) {
	var o RunOptions
	if err := json.Unmarshal(opts, &o); err != nil {
		return "", nil, errdefs.Invalidf("run request: %v", err)
	}
	return b.e.RunDetached(&o, hub)
}
func (b backend) Exited(id string, code int) (bool, time.Duration) {
	return b.e.exited(id, code)
}

// handle is a running detached container, seen from the supervisor.
type handle struct {
	e      *Engine
	id     string
	ctr    *runtime.Container
	copies sync.WaitGroup
	log    *logs.Writer
	// netCgroup: the container uses cfs's own net_cls/net_prio mount
	// (only this of its spec is kept: a running container's handle
	// should cost the supervisor little).
	netCgroup bool
	started   time.Time
}

func (h *handle) Pid() int { return h.ctr.Pid }

// Wait implements supervisor.Handle: it waits for the container to exit,
// drains its output, removes its cgroup and records the exit.
func (h *handle) Wait() int {
	code, _ := h.ctr.Wait()
	h.copies.Wait()
	h.log.Close()
	oom, _ := h.ctr.Cgroup().OOMKilled()
	h.e.teardownCgroups(h.ctr, h.netCgroup)
	fault("supervisor:after-exit")
	h.e.Containers.Update(h.id, func(r *store.Record) error {
		r.State.Status, r.State.Running, r.State.Paused, r.State.Pid = store.StatusExited, false, false, 0
		r.State.ExitCode, r.State.OOMKilled, r.State.FinishedAt = code, oom, time.Now().UTC()
		return nil
	})
	return code
}

// config reads the engine's part of a record.
func config(r *store.Record) containerConfig {
	var cc containerConfig
	json.Unmarshal(r.Extra, &cc)
	if cc.Cgroup == "" {
		cc.Cgroup = "/cfs/" + r.ID
	}
	return cc
}

// startDetached starts container id with its output going to its log and
// to hub's attached clients. A restart (after the policy's delay) gives up
// quietly if the container was stopped or removed meanwhile.
func (e *Engine) startDetached(id string, restart bool, hub *supervisor.Hub) (_ supervisor.Handle, err error) {
	rec, err := e.Containers.Get(id)
	if err != nil {
		if restart {
			return nil, nil
		}
		return nil, err
	}
	// The container's lock is held until the process runs and the record
	// says so: a concurrent stop either comes first (and is seen here) or
	// finds the container running (and stops it).
	unlock, err := e.Containers.Lock(rec.ID)
	if err != nil {
		if restart {
			return nil, nil
		}
		return nil, err
	}
	defer unlock()
	if rec, err = e.Containers.Get(rec.ID); err != nil {
		return nil, err
	}
	cc := config(rec)
	if restart && cc.StopRequested {
		return nil, nil
	}
	if alive(rec.State.Pid) {
		return nil, errdefs.Conflictf("container %s is already running", rec.ID[:12])
	}
	dir := e.Containers.Dir(rec.ID)
	specJSON, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("container %s: reading its spec: %w", rec.ID[:12], err)
	}
	spec := new(specs.Spec)
	if err := json.Unmarshal(specJSON, spec); err != nil {
		return nil, fmt.Errorf("container %s: bad spec: %w", rec.ID[:12], err)
	}
	images, err := e.Images()
	if err != nil {
		return nil, err
	}
	img, err := images.Get(rec.ImageID)
	if err != nil {
		return nil, fmt.Errorf("container %s: its image %s: %w", rec.ID[:12], rec.Image, err)
	}
	rootUID := 0
	if cc.Userns == "remap" {
		rootUID = int(RemapRange.HostID)
	}
	h, err := e.launch(&launchSpec{id: rec.ID, dir: dir, spec: spec, specJSON: specJSON, layers: img.Layers,
		rootUID: rootUID, cc: cc, locked: true, hub: hub})
	if err != nil {
		return nil, err // not a nil *handle in a non-nil interface
	}
	return h, nil
}

// launchSpec is a detached container to start.
type launchSpec struct {
	id, dir  string
	spec     *specs.Spec
	specJSON []byte
	layers   []string // the image's, bottom first
	rootUID  int
	cc       containerConfig
	// materialize, when set, creates the container's record (run -d);
	// files then creates its files while init starts and returns the
	// encoded spec and the writable layer's mounts.
	materialize func() error
	files       func() ([]byte, []mount.Mount, error)
	// durable, when set, waits until the record materialize wrote is on
	// disk; launch calls it before it reports the container started.
	durable func() error
	// spare, when set, is the init to start the container with instead of
	// spawning one (run -d; see spare_linux.go); launch owns it.
	spare *spare
	// locked: the caller holds the container's lock.
	locked bool
	// hub gets the output and, with -i, the container's input.
	hub *supervisor.Hub
}

// launch starts a detached container with its output piped into its log
// and the hub, and returns it once its program runs. With -i the container's
// stdin is a pipe whose write end the hub keeps (or, with -t, the pty
// master), for attaches; otherwise it is /dev/null.
func (e *Engine) launch(l *launchSpec) (_ *handle, err error) {
	rootfs := filepath.Join(l.dir, "rootfs") // containers made before the shared mount point
	if l.spec.Root != nil && l.spec.Root.Path != "" {
		rootfs = l.spec.Root.Path
	}
	cfg := &runtime.Config{ID: l.id, Spec: l.spec, SpecJSON: l.specJSON, Rootfs: rootfs, Bundle: l.dir,
		Tracer: e.Tracer, ExitWithParent: true, EarlyCgroup: !usesNetCgroup(l.spec.Linux.Resources)}
	// Output goes through pipes to the log; the container's init and its
	// program hold the write ends.
	var readers, writers []*os.File
	sp := l.spare
	defer func() {
		for _, f := range writers {
			f.Close()
		}
		if err != nil {
			for _, f := range readers {
				f.Close()
			}
			if sp != nil {
				sp.destroy()
			}
		}
	}()
	pipe := func() (*os.File, error) {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		readers, writers = append(readers, r), append(writers, w)
		return w, nil
	}
	if sp != nil {
		// The spare's init holds the write ends.
		readers = append(readers, sp.stdout, sp.stderr)
		sp.stdout, sp.stderr = nil, nil
	} else {
		if cfg.Stdout, err = pipe(); err != nil {
			return nil, err
		}
		if cfg.Stderr, err = pipe(); err != nil {
			return nil, err
		}
	}
	var stdin *os.File // the write end, for the hub
	if l.cc.Interactive && !l.cc.TTY {
		r, w, perr := os.Pipe()
		if perr != nil {
			return nil, perr
		}
		cfg.Stdin, stdin = r, w
		writers = append(writers, r) // init has its copy
		defer func() {
			if err != nil {
				w.Close()
			}
		}()
	}
	// The record comes before the process: with EarlyCgroup, Spawn makes
	// the container's cgroup, and a crash must never leave a cgroup that
	// no record names (rm -f finds everything through the record).
	if l.materialize != nil {
		if err := l.materialize(); err != nil {
			return nil, err
		}
	}
	if sp != nil {
		sp.claimed() // the record names the spare's cgroup now
	}
	ready := sp != nil && sp.ready != nil // set up already, control socket included
	if !ready {
		if cfg.Control, err = runtime.ListenControl(controlPath(l.dir)); err != nil {
			return nil, err
		}
		defer cfg.Control.Close() // init has its own copy
	}
	var ctr *runtime.Container
	if sp != nil {
		// Setup sends it the control socket; the teardown below owns it.
		ctr, sp.ctr = sp.ctr, nil
	} else if ctr, err = runtime.Spawn(cfg); err != nil {
		return nil, err
	}
	h := &handle{e: e, id: l.id, ctr: ctr, netCgroup: usesNetCgroup(l.spec.Linux.Resources)}
	defer func() {
		if err != nil {
			e.teardown(ctr, l.spec)
		}
	}()
	fault("start:after-spawn")
	if l.files != nil {
		cfg.SpecJSON, cfg.RootfsMounts, err = l.files()
	} else {
		cfg.RootfsMounts, err = e.Snapshots.Prepare(l.dir, l.layers, l.rootUID, l.rootUID)
	}
	if err != nil {
		return nil, err
	}
	if l.cc.AutoRemove {
		// Thrown away with the container: no syncs (see snapshot.Volatile).
		cfg.RootfsMounts = snapshot.Volatile(cfg.RootfsMounts)
	}
	logOpts, err := logs.ParseOptions(l.cc.LogOpts)
	if err != nil {
		return nil, err
	}
	if h.log, err = logs.NewWriter(l.dir, logOpts); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			h.log.Close()
		}
	}()
	if !ready {
		if err := e.setup(ctr, cfg); err != nil {
			return nil, err
		}
	}
	fault("start:after-setup")
	// Output goes to the log first, then to attached clients (the hub
	// never blocks: a slow client misses output, the log has it).
	hub := l.hub // not l: the copies outlive the launch, l's spec need not
	copyTo := func(r *os.File, stream string, frame byte) {
		defer h.copies.Done()
		defer r.Close()
		w := h.log.Stream(stream)
		copyOutput(r, func(p []byte) {
			w.Write(p)
			hub.Output(frame, p)
		})
		w.Close() // flushes a last line without a newline
	}
	if l.cc.TTY && ctr.Pty() != nil {
		// One terminal stream, logged as stdout; with -i attaches type
		// into the pty master.
		readers[0].Close()
		readers[1].Close()
		var in *os.File
		if l.cc.Interactive {
			in = ctr.Pty()
		}
		l.hub.SetInput(in, false, ctr.Pty())
		h.copies.Add(1)
		go copyTo(ctr.Pty(), "stdout", supervisor.FrameStdout)
	} else {
		l.hub.SetInput(stdin, true, nil) // closed by the hub when the container exits
		h.copies.Add(2)
		go copyTo(readers[0], "stdout", supervisor.FrameStdout)
		go copyTo(readers[1], "stderr", supervisor.FrameStderr)
	}
	var startSpec []byte
	if ready {
		startSpec = cfg.SpecJSON // set up with the template's
	}
	if _, err := ctr.StartWith(startSpec); err != nil {
		return nil, err
	}
	h.started = time.Now()
	fault("start:after-start")
	if !l.locked {
		unlock, err := e.Containers.Lock(l.id)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	// No fsync: a crash makes this state stale anyway (Refresh corrects
	// it), and the start should not wait for the disk.
	err = e.Containers.UpdateStateLocked(l.id, func(r *store.Record) error {
		r.State.Status, r.State.Running, r.State.Paused, r.State.Pid = store.StatusRunning, true, false, ctr.Pid
		r.State.StartedAt, r.State.Error = h.started.UTC(), ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	if l.durable != nil {
		if err := l.durable(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// RunDetached creates and starts a container in one go, for the
// supervisor (`cfs run -d`), which is warm: no process start-up, and the
// spec's encoders are built once for every container.
func (e *Engine) RunDetached(o *RunOptions, hub *supervisor.Hub) (_ string, _ supervisor.Handle, err error) {
	// The next spare is made while this container starts from the one
	// it takes (or, when it takes none, once it runs).
	defer e.refillSpare()
	sp := e.takeSpare(o)
	if sp != nil {
		e.refillSpare()
		with := *o
		with.id = sp.id
		o = &with
	}
	pr, err := e.prepare(o, 0, 0)
	if err != nil {
		if sp != nil {
			sp.destroy()
		}
		return "", nil, err
	}
	switch {
	case sp == nil:
	case sp.ready != nil && !sp.ready.fits(pr), sp.ready == nil && !spareFits(pr.spec, sp.id):
		sp.destroy() // its cgroup goes: the container makes its own
		sp = nil
	}
	created := false
	l := &launchSpec{id: pr.id, dir: pr.dir, spec: pr.spec, spare: sp,
		layers: pr.img.Layers, rootUID: pr.rootUID(), cc: pr.cc, hub: hub,
		materialize: func() error { created = true; return e.materializeRecord(pr) },
		durable:     pr.durable,
		files: func() ([]byte, []mount.Mount, error) {
			err := e.materializeFiles(pr)
			return pr.specJSON, pr.rootfsMounts, err
		}}
	if sp != nil && sp.ready != nil {
		// The spare's directory becomes the container's, with the
		// record; then its spec and /etc files are the container's.
		l.materialize = func() error {
			synced, err := e.Containers.CreateUnsyncedIn(pr.rec, sp.ready.dir)
			if err != nil {
				return err
			}
			created = true
			pr.recordSynced = make(chan error, 1)
			go func() { pr.recordSynced <- synced() }()
			fault("create:after-record")
			return nil
		}
		l.files = func() ([]byte, []mount.Mount, error) {
			var err error
			if pr.specJSON, err = json.Marshal(pr.spec); err != nil {
				return nil, nil, err
			}
			if err := os.WriteFile(filepath.Join(pr.dir, "config.json"), pr.specJSON, 0o600); err != nil {
				return nil, nil, err
			}
			// Rewritten in place (the spare's init has them bound): the
			// host's resolv.conf may have changed since.
			return pr.specJSON, nil, writeEtcFiles(pr.etc, pr.cc.Hostname, pr.cc.Network)
		}
	}
	h, err := e.launch(l)
	if err != nil {
		if created {
			e.Snapshots.Remove(pr.dir)
			e.Containers.Delete(pr.id)
		}
		return "", nil, err
	}
	if spareCompatible(o) {
		e.keepTemplate(o)
	}
	return pr.id, h, nil
}

// exited applies the restart policy after an exit (the record already
// says exited) and removes an --rm container.
func (e *Engine) exited(id string, code int) (bool, time.Duration) {
	rec, err := e.Containers.Get(id)
	if err != nil {
		return false, 0
	}
	cc := config(rec)
	if cc.AutoRemove {
		e.Remove(id, true)
		return false, 0
	}
	if !cc.Restart.shouldRestart(code, cc.RestartCount, cc.StopRequested) {
		return false, 0
	}
	ran := rec.State.FinishedAt.Sub(rec.State.StartedAt)
	delay := restartDelay(cc.RestartCount, ran)
	if ran >= 10*time.Second {
		cc.RestartCount = 0
	}
	e.updateConfig(id, func(c *containerConfig) { c.RestartCount++ }, func(r *store.Record) {
		r.State.Status = store.StatusRestarting
	})
	return true, delay
}

// updateConfig changes a container's engine config (and optionally its
// state) under its lock.
func (e *Engine) updateConfig(id string, fn func(*containerConfig), state func(*store.Record)) error {
	return e.Containers.Update(id, func(r *store.Record) error {
		cc := config(r)
		fn(&cc)
		b, err := json.Marshal(cc)
		if err != nil {
			return err
		}
		r.Extra = b
		if state != nil {
			state(r)
		}
		return nil
	})
}

// Start starts created or stopped containers through the supervisor and
// returns the init pid.
func (e *Engine) Start(ref string) (*store.Record, error) {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return nil, err
	}
	rec = e.Refresh(rec)
	if rec.State.Running {
		return rec, nil // Docker: starting a running container is a no-op
	}
	if err := e.updateConfig(rec.ID, func(c *containerConfig) { c.StopRequested = false }, nil); err != nil {
		return nil, err
	}
	if _, err := supervisor.Start(e.Root, rec.ID); err != nil {
		return nil, err
	}
	return rec, nil
}

// Stop sends the container's stop signal (the image's StopSignal, else
// SIGTERM), waits up to timeout, then kills it. Stopping a stopped
// container succeeds, as in Docker. The restart policy does not bring a
// stopped container back.
func (e *Engine) Stop(ref string, timeout time.Duration, signal string) (*store.Record, error) {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return nil, err
	}
	cc := config(rec)
	// A container waiting to restart is simply not restarted.
	notRestarting := func(r *store.Record) {
		if r.State.Status == store.StatusRestarting {
			r.State.Status = store.StatusExited
		}
	}
	if err := e.updateConfig(rec.ID, func(c *containerConfig) { c.StopRequested = true }, notRestarting); err != nil {
		return nil, err
	}
	if rec, err = e.Containers.Get(rec.ID); err != nil {
		return nil, err
	}
	rec = e.Refresh(rec)
	if !rec.State.Running {
		return rec, nil
	}
	if signal == "" {
		signal = cc.StopSignal
	}
	sig := unix.SIGTERM
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return nil, err
		}
	}
	pid := rec.State.Pid
	if rec.State.Paused {
		thawForKill(cc.Cgroup) // a frozen program cannot handle the signal
	}
	unix.Kill(pid, sig)
	if !waitGoneFor(pid, timeout) {
		unix.Kill(pid, unix.SIGKILL)
		waitGoneFor(pid, 10*time.Second)
	}
	// The supervisor records the exit; wait for it briefly so that the
	// caller sees the final state.
	e.waitState(rec.ID, 2*time.Second)
	return rec, nil
}

// Kill sends a signal to a running container.
func (e *Engine) Kill(ref, signal string) (*store.Record, error) {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return nil, err
	}
	sig := unix.SIGKILL
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return nil, err
		}
	}
	rec = e.Refresh(rec)
	if !rec.State.Running {
		return nil, errdefs.Conflictf("cannot kill container %s: container is not running", ref)
	}
	if err := unix.Kill(rec.State.Pid, sig); err != nil {
		return nil, fmt.Errorf("kill container %s: %w", ref, err)
	}
	return rec, nil
}

// Wait blocks until the container is stopped and returns its exit code.
func (e *Engine) Wait(ref string) (int, error) {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return 0, err
	}
	for {
		rec, err = e.Containers.Get(rec.ID)
		if err != nil {
			return 0, err
		}
		rec = e.Refresh(rec)
		// A created container is waited for until it has run and
		// stopped, as in Docker.
		switch rec.State.Status {
		case store.StatusExited, store.StatusDead:
			return rec.State.ExitCode, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitState waits until the record no longer says running.
func (e *Engine) waitState(id string, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		r, err := e.Containers.Get(id)
		if err != nil || !r.State.Running {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitGoneFor(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// RunDetachedVia runs `cfs run -d`: the options are resolved here (the
// environment and env files are the caller's) and the supervisor, already
// warm, does the rest.
func (e *Engine) RunDetachedVia(o *RunOptions) (string, error) {
	p, err := o.validate()
	if err != nil {
		return "", err
	}
	r := *o
	r.Env, r.EnvFiles = p.env, nil
	b, err := json.Marshal(&r)
	if err != nil {
		return "", err
	}
	return supervisor.Run(e.Root, b)
}

// outputBufs are the buffers copyOutput reads into: taken when output is
// there to read, so that a quiet container (most of them, most of the
// time) holds none. Two 32 KiB buffers per running container, touched
// once reused, were most of what supervising one cost (about 64 KiB).
var outputBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyOutput hands what the container writes to r to out until r ends.
// out must not keep the slice. r is a pipe or pty master the Go runtime
// polls; on a descriptor it cannot poll the read blocks, buffer held, as a
// plain Read would.
func copyOutput(r *os.File, out func([]byte)) {
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			buf := outputBufs.Get().(*[]byte)
			defer outputBufs.Put(buf)
			n, rerr = unix.Read(int(fd), *buf)
			if rerr == unix.EAGAIN {
				return false // wait until readable, without a buffer
			}
			if n > 0 {
				out((*buf)[:n])
			}
			return true
		})
		if rerr == unix.EINTR {
			continue
		}
		// An error, end of file, or EIO: a pty master whose last
		// slave closed (the program ended).
		if err != nil || rerr != nil || n <= 0 {
			return
		}
	}
}
