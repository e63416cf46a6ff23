package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/snapshot"
	"github.com/cfs-org/cfs/internal/store"
)

// IO is the terminal or pipes a foreground container talks to.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// containerConfig is the engine's part of a record (store.Record.Extra).
type containerConfig struct {
	Hostname   string   `json:"Hostname"`
	Network    string   `json:"NetworkMode"`
	Userns     string   `json:"UsernsMode,omitempty"`
	Cgroup     string   `json:"CgroupPath"`
	AutoRemove bool     `json:"AutoRemove"`
	TTY        bool     `json:"Tty"`
	Volumes    []string `json:"Binds,omitempty"`
	// Resources are the limits as given (and changed by Update).
	Resources *ResourceOptions `json:"Resources,omitempty"`
	// Restart is the restart policy; RestartCount counts restarts since
	// the container last ran for 10 s; StopRequested is set by stop (a
	// stopped container is not restarted) and cleared by start.
	Restart       RestartPolicy `json:"RestartPolicy"`
	RestartCount  int           `json:"RestartCount,omitempty"`
	StopRequested bool          `json:"StopRequested,omitempty"`
	StopSignal    string        `json:"StopSignal,omitempty"`
	LogOpts       []string      `json:"LogOpts,omitempty"`
	Interactive   bool          `json:"OpenStdin,omitempty"`
}

// Run creates a container from o, runs it in the foreground attached to
// stdio, and returns its exit code. Errors before the user's program runs
// are *runtime.InitError (with 126/127) or categorized errdefs errors (125).
func (e *Engine) Run(o *RunOptions, stdio IO) (code int, err error) {
	// From the start, a signal to `cfs run` is for the container: it is
	// held until the program runs, and never kills cfs half-way through
	// set-up (which would leave the container behind).
	sigs := make(chan os.Signal, 32)
	proxySignals(sigs, o.TTY)
	defer signal.Stop(sigs)
	var width, height uint
	if o.TTY && stdio.Stdout != nil && term.IsTerminal(int(stdio.Stdout.Fd())) {
		if w, h, err := term.GetSize(int(stdio.Stdout.Fd())); err == nil {
			width, height = uint(w), uint(h)
		}
	}
	pr, err := e.prepareBase(o, width, height)
	if err != nil {
		return 0, err
	}
	// The image (its config, user, the final spec) is resolved while the
	// record is written and init spawned, which need only the options.
	type resolved struct {
		ir  *imageResult
		err error
	}
	imageDone := make(chan resolved, 1)
	go func() {
		ir, err := e.resolveImage(pr)
		imageDone <- resolved{ir, err}
	}()
	id, dir := pr.id, pr.dir
	cfg := &runtime.Config{ID: id, Spec: pr.spec, Rootfs: pr.rootfs, Bundle: dir, Tracer: e.Tracer,
		ExitWithParent: true, EarlyCgroup: !usesNetCgroup(pr.resources), FastStart: true}
	if !o.TTY {
		if o.Interactive {
			cfg.Stdin = stdio.Stdin
		}
		cfg.Stdout, cfg.Stderr = stdio.Stdout, stdio.Stderr
	} else {
		cfg.Stderr = stdio.Stderr // init's own errors, before the pty exists
	}
	var ctr *runtime.Container
	created := false
	defer func() {
		if err != nil {
			if ctr != nil {
				e.teardown(ctr, pr.spec)
			}
			if created {
				e.Snapshots.Remove(dir)
				e.Containers.Delete(id)
			}
		}
	}()
	// A --rm container's record lives as long as its process: no fsync.
	e.Containers.NoSync = o.Remove
	// The record comes first: the container's cgroup (made by Spawn, see
	// EarlyCgroup) must never exist without a record naming it, or a cfs
	// killed now would leave it where rm -f cannot find it. The files
	// come while init starts (a few ms of exec and Go start-up).
	created = true // materialize may fail half-way: remove what it made
	if err := e.materializeRecord(pr); err != nil {
		if errors.Is(err, errdefs.ErrConflict) {
			created = false // the name belongs to another container
		}
		if r := <-imageDone; r.err != nil {
			return 0, r.err // an unknown image is the first thing to say
		}
		return 0, err
	}
	// The container's files (the image applied to the spec, /etc files,
	// writable layer, config.json) are made while init is spawned: the
	// cgroups and clone3 keep this goroutine waiting for a millisecond or
	// two. pr is the files goroutine's until filesDone; every return below
	// waits for it.
	filesDone := make(chan error, 1)
	go func() {
		r := <-imageDone
		if r.err != nil {
			filesDone <- r.err
			return
		}
		pr.apply(r.ir)
		if err := runtime.CheckSpec(pr.spec); err != nil {
			filesDone <- err
			return
		}
		filesDone <- e.materializeFiles(pr)
	}()
	if cfg.Control, err = runtime.ListenControl(controlPath(dir)); err != nil {
		<-filesDone
		return 0, err
	}
	defer cfg.Control.Close() // init has its own copy
	if ctr, err = runtime.Spawn(cfg); err != nil {
		<-filesDone
		return 0, err
	}
	if err := <-filesDone; err != nil {
		return 0, err
	}
	cfg.Spec, cfg.SpecJSON, cfg.RootfsMounts = pr.spec, pr.specJSON, pr.rootfsMounts
	if o.Remove {
		cfg.RootfsMounts = snapshot.Volatile(cfg.RootfsMounts)
	}
	if err := e.setup(ctr, cfg); err != nil {
		return 0, err
	}
	var restore func()
	var copied chan struct{}
	if o.TTY {
		restore, copied = attachPty(ctr.Pty(), stdio, o.Interactive)
		defer restore()
	}
	if err := pr.durable(); err != nil {
		return 0, err
	}
	if _, err := ctr.Start(); err != nil {
		return 0, err
	}
	// Signals that came during set-up were held (see sigs): init forwards
	// them to the program now that it runs.
	go func() {
		for s := range sigs {
			if s == syscall.SIGWINCH {
				resizePty(ctr.Pty(), stdio.Stdout)
				continue
			}
			ctr.Signal(s.(syscall.Signal))
		}
	}()
	// The record says "running" while the program runs: a short program
	// (`true`) need not wait for the write before it is waited for. Every
	// later change of the record waits for it (recorded).
	recorded := make(chan struct{})
	startedAt := time.Now().UTC()
	go func() {
		defer close(recorded)
		e.Containers.Update(id, func(r *store.Record) error {
			r.State = store.State{Status: store.StatusRunning, Running: true, Pid: ctr.Pid, StartedAt: startedAt}
			r.ImageID, r.Command, r.Labels, r.Extra = pr.rec.ImageID, pr.rec.Command, pr.rec.Labels, pr.rec.Extra
			return nil
		})
	}()
	code, werr := ctr.Wait()
	if copied != nil {
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	oom, _ := ctr.Cgroup().OOMKilled()
	// The writable layer goes while the cgroup is removed; the record
	// goes last (it names the cgroup for rm -f should cfs die meanwhile).
	var layerGone chan struct{}
	if o.Remove {
		layerGone = make(chan struct{})
		go func() {
			e.Snapshots.Remove(dir)
			close(layerGone)
		}()
	}
	derr := e.teardown(ctr, pr.spec)
	<-recorded
	if o.Remove {
		<-layerGone
		if err := e.Containers.Delete(id); err != nil && derr == nil {
			derr = err
		}
	} else {
		e.Containers.Update(id, func(r *store.Record) error {
			r.State.Status, r.State.Running, r.State.Paused, r.State.Pid = store.StatusExited, false, false, 0
			r.State.ExitCode, r.State.OOMKilled, r.State.FinishedAt = code, oom, time.Now().UTC()
			return nil
		})
	}
	if werr != nil {
		return code, werr
	}
	if derr != nil {
		fmt.Fprintf(stdio.Stderr, "cfs: cleaning up container %s: %v\n", id[:12], derr)
	}
	return code, nil
}

// proxySignals relays the signals a user sends to `cfs run` to the
// container (Docker's --sig-proxy).
func proxySignals(c chan os.Signal, tty bool) {
	sigs := []os.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM,
		syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM, syscall.SIGCONT, syscall.SIGTSTP}
	if tty {
		sigs = append(sigs, syscall.SIGWINCH)
	}
	signal.Notify(c, sigs...)
}

func attachPty(master *os.File, stdio IO, interactive bool) (restore func(), done chan struct{}) {
	restore = func() {}
	if master == nil {
		return restore, nil
	}
	if interactive && stdio.Stdin != nil && term.IsTerminal(int(stdio.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(stdio.Stdin.Fd())); err == nil {
			restore = func() { term.Restore(int(stdio.Stdin.Fd()), st) }
		}
	}
	if interactive && stdio.Stdin != nil {
		go io.Copy(master, stdio.Stdin)
	}
	done = make(chan struct{})
	go func() {
		io.Copy(stdio.Stdout, master) // ends with EIO when the last slave closes
		close(done)
	}()
	return restore, done
}

func resizePty(master, out *os.File) {
	if master == nil || out == nil {
		return
	}
	if ws, err := unix.IoctlGetWinsize(int(out.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// etcFiles names the host files bind-mounted over /etc/hostname, hosts and
// resolv.conf, so the image's own stay untouched.
func etcFiles(dir string) [][2]string {
	return [][2]string{
		{"/etc/hostname", filepath.Join(dir, "hostname")},
		{"/etc/hosts", filepath.Join(dir, "hosts")},
		{"/etc/resolv.conf", filepath.Join(dir, "resolv.conf")},
	}
}

// writeEtcFiles writes the files etcFiles names.
func writeEtcFiles(files [][2]string, hostname, network string) error {
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t" + hostname + "\n"
	resolv := ""
	if network == "host" {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		resolv = string(b)
		if network != "host" {
			// A loopback resolver (systemd-resolved's 127.0.0.53) is the
			// host's own, unreachable from a new network namespace.
			var keep []string
			for _, l := range strings.Split(resolv, "\n") {
				f := strings.Fields(l)
				if len(f) >= 2 && f[0] == "nameserver" && (strings.HasPrefix(f[1], "127.") || f[1] == "::1") {
					continue
				}
				keep = append(keep, l)
			}
			resolv = strings.Join(keep, "\n")
		}
	}
	for i, content := range []string{hostname + "\n", hosts, resolv} {
		if err := os.WriteFile(files[i][1], []byte(content), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", files[i][1], err)
		}
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// lookupUser resolves a user spec against the image's /etc/passwd and
// /etc/group, read from the topmost layer that has them.
func (e *Engine) lookupUser(spec string, img *image.Image) (resolvedUser, error) {
	var passwd, group io.Reader
	if f := openImageFile(img.Layers, "/etc/passwd"); f != nil {
		defer f.Close()
		passwd = f
	}
	if f := openImageFile(img.Layers, "/etc/group"); f != nil {
		defer f.Close()
		group = f
	}
	return resolveUser(spec, passwd, group)
}

// openImageFile opens path in the merged view of layers (bottom first),
// resolving inside each layer only; a whiteout hides lower layers.
func openImageFile(layers []string, path string) *os.File {
	for i := len(layers) - 1; i >= 0; i-- {
		fd, err := mount.OpenInRoot(layers[i], path, false, false)
		if err != nil {
			continue
		}
		p := fmt.Sprintf("/proc/self/fd/%d", fd)
		var st unix.Stat_t
		if unix.Stat(p, &st) != nil {
			unix.Close(fd)
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			unix.Close(fd)
			return nil // a whiteout (0/0 char device) or not a file
		}
		f, err := os.Open(p)
		unix.Close(fd)
		if err != nil {
			return nil
		}
		return f
	}
	return nil
}

// Remove deletes a container: with force a running one is killed first.
func (e *Engine) Remove(ref string, force bool) (string, error) {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return "", err
	}
	unlock, err := e.Containers.Lock(rec.ID)
	if err != nil {
		return "", err
	}
	defer unlock()
	var cc containerConfig
	json.Unmarshal(rec.Extra, &cc)
	if cc.Cgroup == "" {
		cc.Cgroup = "/cfs/" + rec.ID
	}
	if alive(rec.State.Pid) {
		if !force {
			return "", errdefs.Conflictf("cannot remove container %s: container is running: stop the container before removing or use -f", ref)
		}
		unix.Kill(rec.State.Pid, unix.SIGKILL)
		if rec.State.Paused {
			thawForKill(cc.Cgroup) // frozen tasks die only once thawed (v1 freezer)
		}
		waitGone(rec.State.Pid, 5*time.Second)
	}
	err = destroyCgroup(cc.Cgroup)
	releaseNetCgroups(e.Tracer)
	if err != nil {
		return "", fmt.Errorf("remove cgroup of container %s: %w", rec.ID[:12], err)
	}
	if err := e.Snapshots.Remove(e.Containers.Dir(rec.ID)); err != nil {
		return "", err
	}
	unlock()
	unlock = func() {}
	if err := e.Containers.Delete(rec.ID); err != nil {
		return "", err
	}
	return rec.ID, nil
}

func destroyCgroup(path string) error {
	host, err := cgroups.DetectHost()
	if err != nil {
		return err
	}
	m, err := cgroups.New(hostView(host, true), path, nil)
	if err != nil {
		return err
	}
	if pids, err := m.Pids(); err == nil {
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
	}
	return m.Destroy()
}

// alive reports whether pid is a container init of ours: the process
// exists and runs the cfs init (a recycled pid does not).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return strings.Contains(string(b), runtime.InitArg)
}

func waitGone(pid int, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Refresh corrects a record whose process died without its `cfs run`
// noticing (the front end was killed): it is reported as exited.
func (e *Engine) Refresh(r *store.Record) *store.Record {
	if r.State.Running && !alive(r.State.Pid) {
		// Whoever waits for the process (the supervisor, or the `cfs
		// run` in the foreground) records the exit a moment after it:
		// give it that moment before declaring the process lost.
		for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			x, err := e.Containers.Get(r.ID)
			if err != nil {
				return r
			}
			if !x.State.Running || x.State.Pid != r.State.Pid {
				return x
			}
		}
		e.Containers.Update(r.ID, func(x *store.Record) error {
			if x.State.Running && !alive(x.State.Pid) {
				x.State.Running, x.State.Paused, x.State.Status, x.State.Pid = false, false, store.StatusExited, 0
				x.State.ExitCode = 137
				x.State.Error = "container process vanished (its cfs process was killed?)"
				x.State.FinishedAt = time.Now().UTC()
			}
			*r = *x
			return nil
		})
	}
	return r
}
