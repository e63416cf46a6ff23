package engine

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// ParseSignal reads a signal as Docker does: a number, or a name with or
// without "SIG" ("TERM", "SIGKILL", "RTMIN+3").
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalidf("signal %q: out of range", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(strings.TrimPrefix(strings.ToUpper(s), "SIG"))
	if rest, ok := strings.CutPrefix(name, "RTMIN+"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 34+n <= 64 {
			return unix.Signal(34 + n), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "RTMAX-"); ok {
		if n, err := strconv.Atoi(rest); err == nil && n >= 0 && 64-n >= 34 {
			return unix.Signal(64 - n), nil
		}
	}
	if sig := unix.SignalNum("SIG" + name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.Invalidf("signal %q: unknown", s)
}
