// Package trace implements the `--explain` tracer: kernel-facing code reports
// each step (clone, mount, pivot_root, cgroup write, execve) to a Tracer, which
// prints it as a readable, numbered line. A nil *Tracer is valid and does
// nothing, so the cost when tracing is off is one nil check per step.
package trace

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Tracer writes numbered steps to a writer. Safe for concurrent use.
type Tracer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	start  time.Time
}

// New returns a tracer writing to w; prefix names the process that reports
// (for example "cfs" or "init").
func New(w io.Writer, prefix string) *Tracer {
	return &Tracer{w: w, prefix: prefix, start: time.Now()}
}

// Start is the instant times are measured from.
func (t *Tracer) Start() time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.start
}

// SetStart makes times relative to start (the init uses its parent's, so
// both processes' lines share one clock).
func (t *Tracer) SetStart(start time.Time) {
	if t != nil && !start.IsZero() {
		t.start = start
	}
}

// FromFD returns a tracer writing to an inherited file descriptor, or nil
// when fd is negative. The container's init uses it to report from inside.
func FromFD(fd int, prefix string) *Tracer {
	if fd < 0 {
		return nil
	}
	return New(os.NewFile(uintptr(fd), "trace"), prefix)
}

// On reports whether tracing is enabled. Use it to skip building costly
// arguments: `if t.On() { t.Step(...) }`.
func (t *Tracer) On() bool { return t != nil }

// Step reports one step. section is a short category: "clone", "mount",
// "cgroup", "exec", ...
func (t *Tracer) Step(section, format string, args ...any) {
	if t == nil {
		return
	}
	msg := fmt.Sprintf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	ms := float64(time.Since(t.start).Microseconds()) / 1000
	fmt.Fprintf(t.w, "[%-4s %7.3fms] %-8s %s\n", t.prefix, ms, section, strings.TrimRight(msg, "\n"))
}

// Writer returns the underlying writer, or nil for a nil tracer.
func (t *Tracer) Writer() io.Writer {
	if t == nil {
		return nil
	}
	return t.w
}
