package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/trace"
)

// Hook kinds, as named in config.json (runtime-spec config.md "POSIX-platform
// Hooks"). Who runs them and when:
//
//	prestart, createRuntime   the runtime (parent), once init has made the
//	                          namespaces and mounts, before pivot_root
//	createContainer           init, in the container's namespaces, before pivot_root
//	startContainer            init, after pivot_root, before the program runs
//	poststart                 the runtime, once the program runs (OCI start)
//	poststop                  the runtime, when the container is deleted
const (
	HookPrestart        = "prestart"
	HookCreateRuntime   = "createRuntime"
	HookCreateContainer = "createContainer"
	HookStartContainer  = "startContainer"
	HookPoststart       = "poststart"
	HookPoststop        = "poststop"
)

// HooksOf returns the hooks of one kind in spec (nil when none).
func HooksOf(spec *specs.Spec, kind string) []specs.Hook {
	if spec == nil || spec.Hooks == nil {
		return nil
	}
	h := spec.Hooks
	switch kind {
	case HookPrestart:
		return h.Prestart //nolint:staticcheck // deprecated in the spec, still honoured
	case HookCreateRuntime:
		return h.CreateRuntime
	case HookCreateContainer:
		return h.CreateContainer
	case HookStartContainer:
		return h.StartContainer
	case HookPoststart:
		return h.Poststart
	case HookPoststop:
		return h.Poststop
	}
	return nil
}

// HookError is a hook that failed: it names the hook and carries its output.
type HookError struct {
	Kind  string
	Index int
	Path  string
	Err   error
	Out   string
}

func (e *HookError) Error() string {
	msg := fmt.Sprintf("%s hook #%d (%s): %v", e.Kind, e.Index, e.Path, e.Err)
	if out := strings.TrimSpace(e.Out); out != "" {
		msg += ": " + out
	}
	return msg
}

func (e *HookError) Unwrap() error { return e.Err }

// RunHooks runs hooks in order with the container state as JSON on their
// standard input, each with its own environment and timeout. It stops at
// the first failure and returns it as a *HookError.
func RunHooks(kind string, hooks []specs.Hook, state *specs.State, tr *trace.Tracer) error {
	if len(hooks) == 0 {
		return nil
	}
	in, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("encode state for %s hooks: %w", kind, err)
	}
	for i, h := range hooks {
		if err := runHook(kind, i, h, in, tr); err != nil {
			return err
		}
	}
	return nil
}

func runHook(kind string, i int, h specs.Hook, state []byte, tr *trace.Tracer) error {
	if h.Path == "" {
		return &HookError{Kind: kind, Index: i, Err: errors.New("path is empty")}
	}
	ctx := context.Background()
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			return &HookError{Kind: kind, Index: i, Path: h.Path, Err: fmt.Errorf("timeout %d: must be greater than zero", *h.Timeout)}
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*h.Timeout)*time.Second)
		defer cancel()
	}
	args := h.Args
	if len(args) == 0 {
		args = []string{h.Path}
	}
	cmd := exec.CommandContext(ctx, h.Path)
	cmd.Args = args
	cmd.Env = h.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	stdin, err := stateFile(state)
	if err != nil {
		return &HookError{Kind: kind, Index: i, Path: h.Path, Err: err}
	}
	defer stdin.Close()
	cmd.Stdin = stdin
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// A hook that forks a daemon keeps our pipe open: do not wait for it
	// past the hook's own exit.
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	tr.Step("hook", "%s #%d: %s %q", kind, i, h.Path, args)
	err = cmd.Run()
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("timed out after %ds", *h.Timeout)
		}
		return &HookError{Kind: kind, Index: i, Path: h.Path, Err: err, Out: out.String()}
	}
	return nil
}

// stateFile returns a file holding state, read from its start: a hook's
// standard input. Not a pipe written while the hook runs: a hook that
// exits without reading it (`sh -c 'echo x >> log'`) would make that write
// fail with EPIPE and raise SIGPIPE in the writer. In the container's init,
// which subscribes to every signal, that SIGPIPE would then be forwarded
// to the program started right after the startContainer hooks, killing it
// (status 141) before it ran. A memfd is written before the hook exists,
// needs no file system (init runs hooks inside the container's mount
// namespace) and is read to EOF like a pipe.
func stateFile(state []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("oci-state", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("hook state: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "oci-state")
	if _, err := f.Write(state); err != nil {
		f.Close()
		return nil, fmt.Errorf("hook state: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("hook state: %w", err)
	}
	return f, nil
}
