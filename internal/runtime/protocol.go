package runtime

import (
	"encoding/json"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/mount"
)

// initConfig is what the parent sends the container's init over the sync
// socket before anything else.
type initConfig struct {
	// SpecJSON is the encoded spec: the engine encodes it once, for its
	// config.json and for init (encoding a runtime spec the first time in a
	// process builds encoders for its whole type graph: ~1 ms).
	SpecJSON json.RawMessage `json:"spec"`
	// SpecFD: SpecJSON is not in the message but in the memfd that comes
	// with it (a spec too large for one socket message: annotations,
	// seccomp profiles; see specInMessage).
	SpecFD bool `json:"specFd,omitempty"`
	// Spec is SpecJSON decoded, on the init side.
	Spec *specs.Spec `json:"-"`
	// Rootfs is the absolute host path of the root filesystem (Spec.Root.Path
	// resolved against the bundle).
	Rootfs string `json:"rootfs"`
	// RootfsMounts are performed onto Rootfs first (the engine's overlay);
	// empty when the rootfs is a ready directory (OCI bundles).
	RootfsMounts []mount.Mount `json:"rootfsMounts,omitempty"`
	// Trace: init reports each step on its trace descriptor.
	Trace bool `json:"trace,omitempty"`
	// TraceStart is the parent tracer's clock origin (Unix nanoseconds).
	TraceStart int64 `json:"traceStart,omitempty"`
	// ExecFIFO: when set, init waits for `start` by opening this FIFO for
	// writing (OCI create/start run in different processes); otherwise it
	// waits for a "start" message on the sync socket.
	ExecFIFO string `json:"execFifo,omitempty"`
	// ExitWithParent: if the parent goes away before start, init exits
	// (the engine's containers) instead of waiting for a start on its
	// control socket (OCI create, whose process exits after create).
	ExitWithParent bool `json:"exitWithParent,omitempty"`
	// ID and Bundle describe the container to its hooks (state on stdin).
	ID     string `json:"id,omitempty"`
	Bundle string `json:"bundle,omitempty"`
	// HostPid is init's pid as the runtime sees it (the state's pid).
	HostPid int `json:"hostPid,omitempty"`
	// TraceFD, ControlFD and ExtraFDs are descriptor numbers in init (the
	// parent's ExtraFiles start at 3, after the sync socket); -1 or empty
	// when absent. ExtraFDs become the program's 3, 4, ... (--preserve-fds).
	TraceFD   int   `json:"traceFd,omitempty"`
	ControlFD int   `json:"controlFd,omitempty"`
	ExtraFDs  []int `json:"extraFds,omitempty"`
	// ControlInMessage: the control socket was not inherited (init was
	// spawned before its container existed, Config.Spare) but comes with
	// this message, after the spec's memfd if any.
	ControlInMessage bool `json:"controlInMessage,omitempty"`
	// ParentHooks: the parent runs prestart and createRuntime hooks when
	// init reports msgHooks, before pivot_root.
	ParentHooks bool `json:"parentHooks,omitempty"`
	// EarlyRoot: init may make / a recursive slave and mount
	// RootfsMounts before it has decoded the spec, while a goroutine
	// decodes it (the first decode of a runtime spec in a process builds
	// the decoder's view of its whole type graph: about 1 ms, as long as
	// the overlay mount). Set by the parent when the spec asks for nothing
	// else: a new mount namespace, no user namespace, no shared rootfs
	// propagation.
	EarlyRoot bool `json:"earlyRoot,omitempty"`
	// NoPivot: move the root with MS_MOVE and chroot instead of
	// pivot_root (a rootfs on ramfs/initramfs cannot be pivoted).
	NoPivot bool `json:"noPivot,omitempty"`
}

// message is one sync-socket message (SOCK_SEQPACKET keeps boundaries).
type message struct {
	Type string `json:"type"`
	// Error and Code travel with Type "error": Code is the exit code the
	// front end should report (125 setup failure, 126 not executable, 127
	// not found).
	Error string `json:"error,omitempty"`
	Code  int    `json:"code,omitempty"`
	Pid   int    `json:"pid,omitempty"`
	// Spec, with Type "start", replaces the spec init was set up with:
	// a container made ahead (a ready spare, see the engine) learns its
	// program, and what else differs only after the root filesystem is
	// ready, at start.
	Spec json.RawMessage `json:"spec,omitempty"`
}

const (
	msgReady   = "ready"   // init: rootfs prepared, waiting for start
	msgStart   = "start"   // parent: cgroups joined, go
	msgStarted = "started" // init: user process forked and exec'd (Pid)
	msgError   = "error"   // init: setup failed
	msgPty     = "pty"     // init: pty master attached as SCM_RIGHTS
	msgHooks   = "hooks"   // init: namespaces and mounts exist, run prestart/createRuntime
	msgResume  = "resume"  // parent: hooks done, go on to pivot_root
)

// Exit codes for failures before the user's program runs (Docker's).
const (
	ExitSetup         = 125
	ExitNotExecutable = 126
	ExitNotFound      = 127
)

// InitError is a failure the init reported before the user's program ran.
type InitError struct {
	Msg  string
	Code int
}

func (e *InitError) Error() string { return e.Msg }

// ExitCode returns the code a front end reports for this failure.
func (e *InitError) ExitCode() int { return e.Code }

// specInMessage is the largest spec sent inside the config message; a
// SOCK_SEQPACKET message is limited by the socket's send buffer (about
// 200 KiB by default), so larger specs go in a memfd.
const specInMessage = 64 << 10
