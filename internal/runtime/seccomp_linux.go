package runtime

import (
	"fmt"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/trace"
)

// Where the filter goes: on the calling thread only, never with TSYNC.
// Init calls this on its locked main thread just before it forks the
// program, and the exec server forks every exec'd process from a thread
// that carries the same filter, so every process of the container inherits
// it; init's other threads (the Go runtime's) stay unfiltered, as they
// must, since a profile may deny calls the runtime needs. Loading needs
// no_new_privs or CAP_SYS_ADMIN, which init has.

// loadSeccomp compiles s and installs it on the calling thread.
func loadSeccomp(s *specs.LinuxSeccomp, tr *trace.Tracer) error {
	if s == nil {
		return nil
	}
	if s.ListenerPath != "" {
		return fmt.Errorf("seccomp listenerPath %q: user-space notification is not supported", s.ListenerPath)
	}
	filter, err := compileSeccomp(s)
	if err != nil {
		return err
	}
	var flags uint
	for _, f := range s.Flags {
		flags |= seccompFlagValues[f]
	}
	if tr.On() {
		tr.Step("seccomp", "seccomp(SECCOMP_SET_MODE_FILTER) on init's main thread: %s", seccompSummary(s, len(filter)))
	}
	return installFilter(filter, flags)
}

func installFilter(filter []sockFilter, flags uint) error {
	prog := unix.SockFprog{
		Len:    uint16(len(filter)),
		Filter: (*unix.SockFilter)(unsafe.Pointer(&filter[0])),
	}
	_, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, 1 /* SECCOMP_SET_MODE_FILTER */, uintptr(flags), uintptr(unsafe.Pointer(&prog)))
	if errno != 0 {
		return fmt.Errorf("load seccomp filter: %w", errno)
	}
	return nil
}
