package cgroups

import (
	"bufio"
	"bytes"
	"fmt"
	"github.com/cfs-org/cfs/internal/mount"
	"io"
	"strconv"
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// v1Known are controller names the kernel accepts as cgroup v1 mount
// options. They tell controllers apart from other super options ("rw",
// "xattr", "clone_children", ...) when /proc/cgroups is not available.
var v1Known = map[string]bool{
	"cpuset": true, "cpu": true, "cpuacct": true, "blkio": true, "memory": true,
	"devices": true, "freezer": true, "net_cls": true, "perf_event": true,
	"net_prio": true, "hugetlb": true, "pids": true, "rdma": true, "misc": true,
	"debug": true,
}

// v2Names maps a /proc/cgroups name to its cgroup2 controller name, for the
// controllers that have a cgroup2 interface. The others are either part of
// the cgroup2 core (freezer), done with eBPF (devices), accounted by "cpu"
// (cpuacct), or v1-only (net_cls, net_prio, perf_event, debug).
var v2Names = map[string]string{
	"cpuset": "cpuset", "cpu": "cpu", "blkio": "io", "memory": "memory",
	"hugetlb": "hugetlb", "pids": "pids", "rdma": "rdma", "misc": "misc",
}

type procCgroup struct {
	name      string
	hierarchy int
	enabled   bool
}

// ParseHost works out the host's cgroup layout from /proc/self/mountinfo
// and /proc/cgroups (cgroups may be nil: kernels built without cgroup v1
// may not have that file). The controllers of the cgroup2 mount are inferred
// from /proc/cgroups (enabled, hierarchy 0, with a v2 interface); DetectHost
// replaces them with the mount's cgroup.controllers.
func ParseHost(mountinfo, cgroups io.Reader) (*Host, error) {
	var procs []procCgroup
	if cgroups != nil {
		var err error
		if procs, err = parseProcCgroups(cgroups); err != nil {
			return nil, err
		}
	}
	known := v1Known
	if len(procs) > 0 {
		known = make(map[string]bool, len(v1Known)+len(procs))
		for k := range v1Known {
			known[k] = true
		}
		for _, p := range procs {
			known[p.name] = true
		}
	}

	h := &Host{Controllers: map[string]Controller{}}
	var v2 *Hierarchy
	seen := map[string]bool{} // v1 hierarchies by controller set: skip bind mounts
	err := scanCgroupMounts(mountinfo, func(m cgroupMount) {
		if m.fstype == "cgroup2" {
			if v2 == nil || (v2.Root != "/" && m.root == "/") {
				v2 = &Hierarchy{Version: V2, Mount: m.mountPoint, Root: m.root}
			}
			return
		}
		var ctrls []string
		for _, o := range strings.Split(m.superOpts, ",") {
			if known[o] || (strings.HasPrefix(o, "name=") && len(o) > len("name=")) {
				ctrls = append(ctrls, o)
			}
		}
		if len(ctrls) == 0 {
			return
		}
		key := strings.Join(ctrls, ",")
		if seen[key] {
			return
		}
		seen[key] = true
		h.Hierarchies = append(h.Hierarchies, Hierarchy{Version: V1, Mount: m.mountPoint, Root: m.root, Controllers: ctrls})
		for _, c := range ctrls {
			h.Controllers[c] = Controller{Version: V1, Mount: m.mountPoint}
		}
	})
	if err != nil {
		return nil, err
	}

	resource := false // a v1 hierarchy with a real controller, not only name=
	for _, hi := range h.Hierarchies {
		for _, c := range hi.Controllers {
			if !strings.HasPrefix(c, "name=") {
				resource = true
			}
		}
	}

	for _, p := range procs {
		if !p.enabled || p.hierarchy != 0 {
			continue
		}
		if _, onV1 := h.Controllers[p.name]; onV1 {
			continue
		}
		if n, ok := v2Names[p.name]; ok {
			if v2 != nil {
				v2.Controllers = append(v2.Controllers, n)
			}
		} else if p.name != "cpuacct" && p.name != "devices" && p.name != "freezer" {
			h.Unmounted = append(h.Unmounted, p.name)
		}
	}
	if v2 != nil {
		h.Unified = v2.Mount
		h.Hierarchies = append(h.Hierarchies, *v2)
		h.setV2Controllers(v2.Controllers)
	}

	switch {
	case resource && v2 != nil:
		h.Mode = Hybrid
	case resource:
		h.Mode = Legacy
	case v2 != nil:
		h.Mode = Unified
	default:
		return nil, errdefs.Unsupportedf("no cgroup filesystem is mounted (checked mountinfo for cgroup and cgroup2)")
	}
	return h, nil
}

// setV2Controllers records the controllers of the cgroup2 hierarchy,
// replacing earlier ones. v1 bindings win: a controller is on one hierarchy.
func (h *Host) setV2Controllers(names []string) {
	for k, c := range h.Controllers {
		if c.Version == V2 {
			delete(h.Controllers, k)
		}
	}
	var kept []string
	for _, n := range names {
		if _, onV1 := h.Controllers[n]; onV1 {
			continue
		}
		h.Controllers[n] = Controller{Version: V2, Mount: h.Unified}
		kept = append(kept, n)
	}
	for i := range h.Hierarchies {
		if h.Hierarchies[i].Version == V2 {
			h.Hierarchies[i].Controllers = kept
		}
	}
}

func parseProcCgroups(r io.Reader) ([]procCgroup, error) {
	var out []procCgroup
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			return nil, errdefs.Invalidf("/proc/cgroups: malformed line %q", line)
		}
		hier, err := strconv.Atoi(f[1])
		if err != nil {
			return nil, errdefs.Invalidf("/proc/cgroups: malformed hierarchy in %q", line)
		}
		out = append(out, procCgroup{name: f[0], hierarchy: hier, enabled: f[3] == "1"})
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("reading /proc/cgroups: %w", err)
	}
	return out, nil
}

type cgroupMount struct {
	root, mountPoint, fstype, superOpts string
}

// scanCgroupMounts calls fn for each cgroup or cgroup2 line of a mountinfo
// file (proc(5)): "id parent maj:min root mountpoint opts [tags...] - fstype
// source superopts". Other lines are rejected after one substring search, so
// a host with thousands of mounts stays cheap.
func scanCgroupMounts(r io.Reader, fn func(cgroupMount)) error {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	sep := []byte(" - ")
	for s.Scan() {
		line := s.Bytes()
		i := bytes.Index(line, sep)
		if i < 0 {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			return errdefs.Invalidf("mountinfo: no separator in line %q", line)
		}
		tail := line[i+len(sep):]
		if !bytes.HasPrefix(tail, []byte("cgroup")) {
			continue
		}
		post := strings.Fields(string(tail))
		if len(post) < 3 || (post[0] != "cgroup" && post[0] != "cgroup2") {
			continue
		}
		pre := strings.Fields(string(line[:i]))
		if len(pre) < 6 {
			return errdefs.Invalidf("mountinfo: malformed line %q", line)
		}
		fn(cgroupMount{
			root:       mount.UnescapeMountinfo(pre[3]),
			mountPoint: mount.UnescapeMountinfo(pre[4]),
			fstype:     post[0],
			superOpts:  post[2],
		})
	}
	if err := s.Err(); err != nil {
		return fmt.Errorf("reading mountinfo: %w", err)
	}
	return nil
}
