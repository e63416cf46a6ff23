package engine

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// RestartPolicy is Docker's --restart.
type RestartPolicy struct {
	Name              string `json:"Name"` // no, on-failure, always, unless-stopped
	MaximumRetryCount int    `json:"MaximumRetryCount,omitempty"`
}

// ParseRestartPolicy parses no|on-failure[:N]|always|unless-stopped.
func ParseRestartPolicy(s string) (RestartPolicy, error) {
	name, count, hasCount := strings.Cut(s, ":")
	p := RestartPolicy{Name: name}
	switch name {
	case "", "no":
		p.Name = "no"
	case "always", "unless-stopped":
	case "on-failure":
		if hasCount {
			n, err := strconv.Atoi(count)
			if err != nil || n < 0 {
				return p, errdefs.Invalidf("--restart %q: the retry count must be a number >= 0", s)
			}
			p.MaximumRetryCount = n
			hasCount = false
		}
	default:
		return p, errdefs.Invalidf("--restart %q: must be no, on-failure[:max-retries], always or unless-stopped", s)
	}
	if hasCount {
		return p, errdefs.Invalidf("--restart %q: only on-failure takes a retry count", s)
	}
	return p, nil
}

// shouldRestart decides, after an exit with code, whether the policy
// restarts the container; restarts counts the restarts so far.
func (p RestartPolicy) shouldRestart(code, restarts int, stopRequested bool) bool {
	if stopRequested {
		return false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return code != 0 && (p.MaximumRetryCount == 0 || restarts < p.MaximumRetryCount)
	}
	return false
}

// restartDelay is the back-off before restart number n+1: 100 ms doubling,
// at most a minute (Docker's). A container that ran for 10 s or more starts
// over at 100 ms.
func restartDelay(restarts int, ran time.Duration) time.Duration {
	if ran >= 10*time.Second {
		return 100 * time.Millisecond
	}
	d := 100 * time.Millisecond << min(restarts, 10)
	return min(d, time.Minute)
}

// faultStep is the step at which a test wants this process to die
// (CFS_FAULT=step): crash injection for the state-store tests.
var faultStep = os.Getenv("CFS_FAULT")

// fault kills the process with SIGKILL when step is the injected fault.
func fault(step string) {
	if faultStep != "" && faultStep == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
