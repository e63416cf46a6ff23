package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

var hostCache struct {
	sync.Mutex
	host *Host
}

// DetectHost returns the layout of the running host. The first call parses
// /proc/self/mountinfo and /proc/cgroups and reads the cgroup2 mount's
// cgroup.controllers; later calls return the same *Host (treat it as read
// only). Errors are not cached.
func DetectHost() (*Host, error) {
	hostCache.Lock()
	defer hostCache.Unlock()
	if hostCache.host != nil {
		return hostCache.host, nil
	}
	h, err := detectHost("/proc/self/mountinfo", "/proc/cgroups")
	if err != nil {
		return nil, err
	}
	hostCache.host = h
	return h, nil
}

func detectHost(mountinfo, cgroups string) (*Host, error) {
	mi, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("detecting cgroups: %w", err)
	}
	defer mi.Close()
	var h *Host
	// /proc/cgroups is missing on kernels built without cgroup v1.
	if cg, err := os.Open(cgroups); err == nil {
		defer cg.Close()
		h, err = ParseHost(mi, cg)
		if err != nil {
			return nil, err
		}
	} else if errors.Is(err, os.ErrNotExist) {
		if h, err = ParseHost(mi, nil); err != nil {
			return nil, err
		}
	} else {
		return nil, fmt.Errorf("detecting cgroups: %w", err)
	}
	if h.Unified != "" {
		// The mount's own list is the truth for v2; /proc/cgroups only
		// hints at it.
		if avail, err := readString(h.Unified, "cgroup.controllers"); err == nil {
			h.setV2Controllers(strings.Fields(avail))
		}
	}
	return h, nil
}

// MountV1Controllers mounts a new v1 hierarchy holding the given
// controllers (e.g. "net_cls", "net_prio") at dir/<names joined by ",">,
// for controllers the kernel has but no hierarchy holds (Host.Unmounted).
// It is done only when the engine asks (network classID/priorities need
// it); nothing of the host's is unmounted, and the mount stays for later
// containers. Controllers already on a v1 hierarchy are left as they are.
// It returns the host with the new hierarchy; if h is the cached DetectHost
// result, the cache is updated too.
func MountV1Controllers(h *Host, dir string, controllers []string, tr *trace.Tracer) (*Host, error) {
	var need []string
	for _, c := range controllers {
		if ctl, ok := h.Controllers[c]; ok && ctl.Version == V1 {
			continue
		}
		if !slices.Contains(h.Unmounted, c) {
			return nil, errdefs.Unsupportedf("mounting cgroup controller %q: not an unmounted v1 controller of this kernel (unmounted: %s)", c, strings.Join(h.Unmounted, ", "))
		}
		need = append(need, c)
	}
	if len(need) == 0 {
		return h, nil
	}
	opts := strings.Join(need, ",")
	target := filepath.Join(dir, opts)
	tr.Step("cgroup", "mkdir -p %s", target)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return nil, fmt.Errorf("mounting cgroup %s: %w", opts, err)
	}
	tr.Step("cgroup", "mount -t cgroup -o %s cgroup %s", opts, target)
	if err := unix.Mount("cgroup", target, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RELATIME, opts); err != nil {
		return nil, fmt.Errorf("mounting cgroup %s on %s: %w", opts, target, err)
	}
	n := h.clone()
	n.Hierarchies = slices.Insert(n.Hierarchies, n.v1Count(), Hierarchy{Version: V1, Mount: target, Root: "/", Controllers: need})
	for _, c := range need {
		n.Controllers[c] = Controller{Version: V1, Mount: target}
	}
	n.Unmounted = slices.DeleteFunc(n.Unmounted, func(c string) bool { return slices.Contains(need, c) })
	if n.Mode == Unified {
		n.Mode = Hybrid
	}
	hostCache.Lock()
	if hostCache.host == h {
		hostCache.host = n
	}
	hostCache.Unlock()
	return n, nil
}

func (h *Host) v1Count() int {
	n := 0
	for _, hi := range h.Hierarchies {
		if hi.Version == V1 {
			n++
		}
	}
	return n
}
