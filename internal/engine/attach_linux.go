package engine

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/store"
	"github.com/cfs-org/cfs/internal/supervisor"
)

// AttachOptions are those of `cfs attach` and `cfs start -a/-i`.
type AttachOptions struct {
	// Stdin forwards the caller's stdin, if the container was created
	// with -i. StdinOnce: the end of it closes the container's stdin
	// (`start -ai`, as Docker's for a `create -i` container).
	Stdin, StdinOnce bool
	// DetachKeys is Docker's --detach-keys; "" means ctrl-p,ctrl-q. They
	// work with a terminal, as in Docker.
	DetachKeys string
	// SigProxy relays the caller's signals to a container without a
	// terminal (with one, ^C is a key like any other).
	SigProxy bool
	// CheckTTY refuses a stdin that is not a terminal for a container
	// that has one (`docker attach`'s check).
	CheckTTY bool
}

// ErrDetached: the user typed the detach keys. Its text is what Docker
// prints then.
var ErrDetached = errors.New("read escape sequence")

// Attach streams a running detached container's output to stdio, and
// stdio's input to it, until it exits (its exit code is returned) or the
// user detaches (ErrDetached).
func (e *Engine) Attach(ref string, o AttachOptions, stdio IO) (int, error) {
	keys, err := ParseDetachKeys(o.DetachKeys)
	if err != nil {
		return 0, err
	}
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return 0, err
	}
	rec = e.Refresh(rec)
	if err := attachable(rec); err != nil {
		return 0, err
	}
	cc := config(rec)
	if cc.TTY && o.Stdin && o.CheckTTY && (stdio.Stdin == nil || !term.IsTerminal(int(stdio.Stdin.Fd()))) {
		return 0, errdefs.Invalidf("the input device is not a TTY")
	}
	stdin := o.Stdin && cc.Interactive && stdio.Stdin != nil
	ac, err := supervisor.Attach(e.Root, rec.ID, stdin, o.StdinOnce)
	if errors.Is(err, supervisor.ErrNotAttachable) {
		// It stopped meanwhile, or it is not the supervisor's.
		if rec, gerr := e.Containers.Get(rec.ID); gerr == nil {
			if aerr := attachable(e.Refresh(rec)); aerr != nil {
				return 0, aerr
			}
		}
		return 0, errdefs.Conflictf("container %s cannot be attached: it is not run by the supervisor "+
			"(it runs in the foreground of its `cfs run`, or the supervisor that started it was killed)", ref)
	}
	if err != nil {
		return 0, err
	}
	return attachStream(ac, rec.State.Pid, cc.TTY, stdin, keys, o, stdio)
}

// StartAttach starts a container with the caller attached from before its
// program runs (`cfs start -a [-i]`); a running one is attached to.
func (e *Engine) StartAttach(ref string, o AttachOptions, stdio IO) (int, error) {
	keys, err := ParseDetachKeys(o.DetachKeys)
	if err != nil {
		return 0, err
	}
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return 0, err
	}
	if e.Refresh(rec).State.Running {
		return e.Attach(ref, o, stdio)
	}
	cc := config(rec)
	if err := e.updateConfig(rec.ID, func(c *containerConfig) { c.StopRequested = false }, nil); err != nil {
		return 0, err
	}
	stdin := o.Stdin && cc.Interactive && stdio.Stdin != nil
	ac, err := supervisor.StartAttached(e.Root, rec.ID, stdin, o.StdinOnce)
	if err != nil {
		return 0, err
	}
	return attachStream(ac, ac.Pid, cc.TTY, stdin, keys, o, stdio)
}

// attachable says why a container cannot be attached to, in Docker's words.
func attachable(r *store.Record) error {
	switch {
	case r.State.Status == store.StatusRestarting:
		return errdefs.Conflictf("You cannot attach to a restarting container, wait until it is running")
	case !r.State.Running:
		return errdefs.Conflictf("You cannot attach to a stopped container, start it first")
	case r.State.Paused:
		return errdefs.Conflictf("You cannot attach to a paused container, unpause it first")
	}
	return nil
}

// attachStream runs the client's side of an attach stream: output to
// stdio, input (with detach keys on a terminal) and window size to the
// container, signals to init (pid) without a terminal.
func attachStream(ac *supervisor.AttachConn, pid int, tty, stdin bool, keys []byte, o AttachOptions, stdio IO) (int, error) {
	defer ac.Close()
	restore := func() {}
	raw := false
	if tty && stdin && term.IsTerminal(int(stdio.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(stdio.Stdin.Fd())); err == nil {
			raw = true
			restore = sync.OnceFunc(func() { term.Restore(int(stdio.Stdin.Fd()), st) })
		}
	}
	defer restore()
	if tty && stdio.Stdout != nil && term.IsTerminal(int(stdio.Stdout.Fd())) {
		resize := func(more uint16) {
			if ws, err := unix.IoctlGetWinsize(int(stdio.Stdout.Fd()), unix.TIOCGWINSZ); err == nil {
				ac.Resize(ws.Row+more, ws.Col+more)
			}
		}
		// As Docker: one size change makes the program redraw (a shell
		// shows its prompt again on a second attach), then the real one.
		resize(1)
		resize(0)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		defer signal.Stop(winch)
		go func() {
			for range winch {
				resize(0)
			}
		}()
	}
	if !tty && o.SigProxy && pid > 0 {
		sigs := make(chan os.Signal, 32)
		proxySignals(sigs, false)
		defer signal.Stop(sigs)
		go func() {
			for s := range sigs {
				unix.Kill(pid, s.(syscall.Signal)) // init relays it to the program
			}
		}()
	}
	detached := make(chan struct{})
	if stdin {
		go func() {
			f := escapeFilter{keys: keys}
			buf := make([]byte, 32<<10)
			for {
				n, err := stdio.Stdin.Read(buf)
				if n > 0 {
					p, detach := buf[:n], false
					if tty {
						p, detach = f.filter(p)
					}
					if len(p) > 0 && ac.Stdin(p) != nil {
						return
					}
					if detach {
						close(detached)
						return
					}
				}
				if err != nil {
					if err == io.EOF {
						ac.CloseStdin()
					}
					return
				}
			}
		}()
	}
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		var dropped int64
		var told time.Time
		tell := func() {
			nl := "\n"
			if raw {
				nl = "\r\n"
			}
			fmt.Fprintf(stdio.Stderr, "%scfs: attach: %d bytes of output dropped: this client read them too slowly (`cfs logs` has them)%s", nl, dropped, nl)
			dropped, told = 0, time.Now()
		}
		for {
			typ, p, err := ac.Next()
			if err != nil {
				done <- result{err: fmt.Errorf("attach: the supervisor closed the stream: %w", err)}
				return
			}
			switch typ {
			case supervisor.FrameStdout:
				stdio.Stdout.Write(p)
			case supervisor.FrameStderr:
				stdio.Stderr.Write(p)
			case supervisor.FrameDropped:
				if len(p) == 8 {
					dropped += int64(binary.BigEndian.Uint64(p))
				}
				if time.Since(told) > time.Second {
					tell()
				}
			case supervisor.FrameExit:
				if dropped > 0 {
					tell()
				}
				code := 0
				if len(p) == 4 {
					code = int(int32(binary.BigEndian.Uint32(p)))
				}
				done <- result{code: code}
				return
			}
		}
	}()
	select {
	case r := <-done:
		return r.code, r.err
	case <-detached:
		return 0, ErrDetached
	}
}
