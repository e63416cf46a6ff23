package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/runtime"
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
	p, err := o.validate()
	if err != nil {
		return 0, err
	}
	images, err := e.Images()
	if err != nil {
		return 0, err
	}
	img, err := images.Get(o.Image)
	if err != nil {
		return 0, err
	}
	id := store.NewID()
	hostname := o.Hostname
	if hostname == "" {
		hostname = id[:12]
		if o.Network == "host" {
			hostname, _ = os.Hostname()
		}
	}
	userSpec := img.Config.Config.User
	if o.User != "" {
		userSpec = o.User
	}
	user, err := e.lookupUser(userSpec, img)
	if err != nil {
		return 0, err
	}
	resources, err := o.Resources.Spec()
	if err != nil {
		return 0, err
	}
	cgroupParent := "/cfs"
	if o.Resources.CgroupParent != "" {
		cgroupParent = "/" + strings.Trim(path.Clean("/"+o.Resources.CgroupParent), "/")
	}
	network := o.Network
	if network == "" {
		network = "none"
	}
	cc := containerConfig{Hostname: hostname, Network: network, Userns: o.Userns, Cgroup: path.Join(cgroupParent, id),
		AutoRemove: o.Remove, TTY: o.TTY}
	for _, v := range p.volumes {
		cc.Volumes = append(cc.Volumes, v.String())
	}
	extra, _ := json.Marshal(cc)
	rec := &store.Record{
		ID: id, Name: o.Name, Image: o.Image, ImageID: img.ID.String(),
		Command: processArgs(img.Config.Config, o), Created: time.Now().UTC(),
		State: store.State{Status: store.StatusCreated}, Labels: img.Config.Config.Labels, Extra: extra,
	}
	// Every path is known before anything exists, so the spec comes first
	// and the container's init starts right away: its few milliseconds of
	// start-up in new namespaces overlap with the record, the files and
	// the cgroup made below.
	dir := e.Containers.Dir(id)
	rootfs := filepath.Join(dir, "rootfs")
	etc := etcFiles(dir)
	in := &specInput{
		ID: id, Opts: o, Parsed: p, Image: img.Config.Config, User: user, Rootfs: rootfs,
		Hostname: hostname, EtcFiles: etc, Cgroup: cc.Cgroup, Resources: resources,
	}
	if o.TTY && stdio.Stdout != nil && term.IsTerminal(int(stdio.Stdout.Fd())) {
		if w, h, err := term.GetSize(int(stdio.Stdout.Fd())); err == nil {
			in.Width, in.Height = uint(w), uint(h)
		}
	}
	spec := buildSpec(in)
	cfg := &runtime.Config{ID: id, Spec: spec, Rootfs: rootfs, Tracer: e.Tracer}
	if !o.TTY {
		if o.Interactive {
			cfg.Stdin = stdio.Stdin
		}
		cfg.Stdout, cfg.Stderr = stdio.Stdout, stdio.Stderr
	} else {
		cfg.Stderr = stdio.Stderr // init's own errors, before the pty exists
	}
	ctr, err := runtime.Spawn(cfg)
	if err != nil {
		return 0, err
	}
	created := false
	defer func() {
		if err != nil {
			ctr.Destroy()
			if created {
				e.Snapshots.Remove(dir)
				e.Containers.Delete(id)
			}
		}
	}()
	// A --rm container's record lives as long as its process: no fsync.
	e.Containers.NoSync = o.Remove
	if err := e.Containers.Create(rec); err != nil {
		return 0, err
	}
	created = true
	for _, v := range p.volumes {
		if err := os.MkdirAll(v.Source, 0o755); err != nil {
			return 0, errdefs.Invalidf("--volume %s: %v", v, err)
		}
	}
	if err := writeEtcFiles(etc, hostname, network); err != nil {
		return 0, err
	}
	rootUID, rootGID := 0, 0
	if o.Userns == "remap" {
		rootUID, rootGID = int(RemapRange.HostID), int(RemapRange.HostID)
		// The container's root mounts its overlay from inside its user
		// namespace: it must traverse (not list) its directory.
		if err := os.Chmod(dir, 0o711); err != nil {
			return 0, err
		}
	}
	cfg.RootfsMounts, err = e.Snapshots.Prepare(dir, img.Layers, rootUID, rootGID)
	if err != nil {
		return 0, err
	}
	if err := os.Mkdir(rootfs, 0o755); err != nil && !os.IsExist(err) {
		return 0, err
	}
	if cfg.SpecJSON, err = json.Marshal(spec); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg.SpecJSON, 0o600); err != nil {
		return 0, err
	}
	if err := ctr.Setup(cfg); err != nil {
		return 0, err
	}
	var restore func()
	var copied chan struct{}
	if o.TTY {
		restore, copied = attachPty(ctr.Pty(), stdio, o.Interactive)
		defer restore()
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
	e.Containers.Update(id, func(r *store.Record) error {
		r.State = store.State{Status: store.StatusRunning, Running: true, Pid: ctr.Pid, StartedAt: time.Now().UTC()}
		return nil
	})
	code, werr := ctr.Wait()
	if copied != nil {
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	oom, _ := ctr.Cgroup().OOMKilled()
	derr := ctr.Destroy()
	if o.Remove {
		e.Snapshots.Remove(dir)
		if err := e.Containers.Delete(id); err != nil && derr == nil {
			derr = err
		}
	} else {
		e.Containers.Update(id, func(r *store.Record) error {
			r.State.Status, r.State.Running, r.State.Pid = store.StatusExited, false, 0
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
	if alive(rec.State.Pid) {
		if !force {
			return "", errdefs.Conflictf("cannot remove container %s: container is running: stop the container before removing or use -f", ref)
		}
		unix.Kill(rec.State.Pid, unix.SIGKILL)
		waitGone(rec.State.Pid, 5*time.Second)
	}
	var cc containerConfig
	json.Unmarshal(rec.Extra, &cc)
	if cc.Cgroup == "" {
		cc.Cgroup = "/cfs/" + rec.ID
	}
	if err := destroyCgroup(cc.Cgroup); err != nil {
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
	m, err := cgroups.New(host, path, nil)
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
		e.Containers.Update(r.ID, func(x *store.Record) error {
			if x.State.Running && !alive(x.State.Pid) {
				x.State.Running, x.State.Status, x.State.Pid = false, store.StatusExited, 0
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

var _ = errors.New
var _ specs.Spec
