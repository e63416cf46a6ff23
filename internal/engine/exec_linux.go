package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/supervisor"
)

// ExecOptions are `cfs exec`'s (Docker's names).
type ExecOptions struct {
	Cmd         []string
	Interactive bool
	TTY         bool
	Detach      bool
	Env         []string
	User        string
	Workdir     string
}

// controlPath is where a container's init listens for exec requests.
func controlPath(dir string) string { return filepath.Join(dir, "control.sock") }

// Exec runs a command in a running container: the container's init forks
// it, so it joins every namespace and the cgroup and carries the same
// security settings as the container's own processes (see the runtime's
// control_linux.go). It returns the command's exit code.
func (e *Engine) Exec(ref string, o *ExecOptions, stdio IO) (int, error) {
	if len(o.Cmd) == 0 {
		return 0, errdefs.Invalidf("no command given")
	}
	sigs := make(chan os.Signal, 32)
	proxySignals(sigs, o.TTY)
	defer signal.Stop(sigs)
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return 0, err
	}
	rec = e.Refresh(rec)
	if !rec.State.Running {
		return 0, errdefs.Conflictf("container %s is not running", ref)
	}
	if rec.State.Paused {
		return 0, errdefs.Conflictf("container %s is paused: unpause it first", ref)
	}
	dir := e.Containers.Dir(rec.ID)
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return 0, fmt.Errorf("container %s: reading its spec: %w", ref, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil || spec.Process == nil {
		return 0, fmt.Errorf("container %s: bad spec: %v", ref, err)
	}
	proc := *spec.Process // caps, rlimits, no_new_privs as the container's
	proc.Args = o.Cmd
	proc.Terminal = o.TTY
	proc.ConsoleSize = nil
	env, err := (&RunOptions{Env: o.Env, Image: "-"}).validate()
	if err != nil {
		return 0, err
	}
	proc.Env = mergeEnv(proc.Env, env.env)
	if o.TTY {
		proc.Env = mergeEnv(proc.Env, []string{"TERM=xterm"})
		if stdio.Stdout != nil && term.IsTerminal(int(stdio.Stdout.Fd())) {
			if w, h, err := term.GetSize(int(stdio.Stdout.Fd())); err == nil {
				proc.ConsoleSize = &specs.Box{Width: uint(w), Height: uint(h)}
			}
		}
	}
	if o.Workdir != "" {
		if !filepath.IsAbs(o.Workdir) {
			return 0, errdefs.Invalidf("--workdir %q: must be an absolute path", o.Workdir)
		}
		proc.Cwd = o.Workdir
	}
	if o.User != "" {
		images, err := e.Images()
		if err != nil {
			return 0, err
		}
		img, err := images.Get(rec.ImageID)
		if err != nil {
			return 0, err
		}
		u, err := e.lookupUser(o.User, img)
		if err != nil {
			return 0, err
		}
		proc.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.Groups}
	}
	eo := runtime.ExecOptions{Control: controlPath(dir), Tty: o.TTY}
	if !o.TTY && !o.Detach {
		if o.Interactive {
			eo.Stdin = stdio.Stdin
		}
		eo.Stdout, eo.Stderr = stdio.Stdout, stdio.Stderr
	}
	p, err := runtime.Exec(&proc, eo)
	if err != nil {
		if err == runtime.ErrNotRunning {
			return 0, errdefs.Conflictf("container %s is not running", ref)
		}
		return 0, err
	}
	if o.Detach {
		// The process lives as long as its connection to init: the
		// supervisor holds it from now on.
		conn, err := p.Conn()
		if err != nil {
			p.Close()
			return 0, err
		}
		defer conn.Close()
		err = supervisor.Adopt(e.Root, rec.ID, p.Pid, conn)
		p.Close()
		return 0, err
	}
	defer p.Close()
	var copied chan struct{}
	if o.TTY {
		var restore func()
		restore, copied = attachPty(p.Pty(), stdio, o.Interactive)
		defer restore()
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGWINCH {
				resizePty(p.Pty(), stdio.Stdout)
				continue
			}
			p.Signal(s.(syscall.Signal))
		}
	}()
	code, err := p.Wait()
	if copied != nil {
		select {
		case <-copied:
		case <-time.After(2 * time.Second):
		}
	}
	if err == runtime.ErrNotRunning {
		return code, errdefs.Conflictf("container %s stopped while the command ran", ref)
	}
	return code, err
}

// adopted is a detached exec'd process held by the supervisor.
type adopted struct{ p *runtime.ExecProcess }

func (a adopted) Pid() int  { return a.p.Pid }
func (a adopted) Wait() int { code, _ := a.p.Wait(); return code }

func (b backend) Adopt(id string, pid int, conn *os.File) (supervisor.Handle, error) {
	return adopted{runtime.ResumeExec(conn, pid)}, nil
}
