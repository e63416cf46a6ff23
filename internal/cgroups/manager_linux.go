package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

// hier is the container's cgroup in one hierarchy.
type hier struct {
	version Version
	mount   string
	dir     string // mount + the manager's path
	ctrls   []string
	// optional hierarchies (named v1 ones, cgroup2 on a hybrid host) may
	// fail to join; skipped records that Create or Add gave up on them.
	optional bool
	skipped  bool
}

// manager implements Manager for all three host modes: each controller is
// driven through the hierarchy that holds it (v1 code in fs1_linux.go, v2
// code in fs2_linux.go).
type manager struct {
	host  *Host
	path  string
	tr    *trace.Tracer
	hiers []*hier
	v1    map[string]*hier // v1 controller -> hierarchy
	v2    *hier            // the cgroup2 hierarchy, nil if not mounted
	v2has map[string]bool  // controllers the cgroup2 hierarchy offers
	v2on  map[string]bool  // controllers known enabled for our v2 cgroup

	// mkdirHook, if set, runs after each successful mkdir. Unit tests use
	// it to fill new directories with files, as cgroupfs does.
	mkdirHook func(dir string)
}

// New returns a Manager for the cgroup at path (like "/cfs/<id>", relative
// to every hierarchy's mount point) on host h. It touches nothing: Create
// makes the directories.
//
// Decision on optional hierarchies: the name=systemd (and any named) v1
// hierarchy and, on a hybrid host, the cgroup2 mount are joined too, so that
// tools which look there (systemd, "ps -o cgroup") see the container apart;
// but an error there (read-only mount in a nested container, a foreign
// delegation) is traced and the hierarchy skipped instead of failing the
// container, because no limit depends on it. The exception is a resource
// that needs a controller there (hugepage limits on the development VM):
// Set then fails, naming the controller.
func New(h *Host, path string, tr *trace.Tracer) (Manager, error) {
	if h == nil {
		return nil, errdefs.Invalidf("cgroups.New: nil host")
	}
	p, err := cleanPath(path)
	if err != nil {
		return nil, err
	}
	m := &manager{
		host:  h,
		path:  p,
		tr:    tr,
		v1:    map[string]*hier{},
		v2has: map[string]bool{},
		v2on:  map[string]bool{},
	}
	for _, hi := range h.Hierarchies {
		x := &hier{version: hi.Version, mount: hi.Mount, dir: filepath.Join(hi.Mount, p), ctrls: hi.Controllers}
		if hi.Version == V1 {
			x.optional = true
			for _, c := range hi.Controllers {
				m.v1[c] = x
				if !strings.HasPrefix(c, "name=") {
					x.optional = false
				}
			}
		} else {
			if m.v2 != nil {
				continue
			}
			x.optional = h.Mode == Hybrid
			m.v2 = x
			for _, c := range hi.Controllers {
				m.v2has[c] = true
			}
		}
		m.hiers = append(m.hiers, x)
	}
	return m, nil
}

// Create implements Manager.
func (m *manager) Create() error {
	for _, h := range m.hiers {
		h.skipped = false
		if err := m.createIn(h); err != nil {
			if h.optional {
				m.tr.Step("cgroup", "skip optional hierarchy %s: %v", h.mount, err)
				h.skipped = true
				continue
			}
			return fmt.Errorf("creating cgroup %s: %w", h.dir, err)
		}
	}
	return nil
}

// createIn makes the cgroup in one hierarchy. The common case is one mkdir;
// missing parents are made only on ENOENT. A concurrent Destroy may remove
// an empty parent between our mkdirs, hence the retries.
func (m *manager) createIn(h *hier) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		err = m.mkdir(h.dir)
		if err == nil || errors.Is(err, unix.EEXIST) {
			err = nil
			break
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
		if perr := m.createParents(h); perr != nil && !errors.Is(perr, unix.ENOENT) {
			return perr
		}
	}
	if err != nil {
		return err
	}
	if h.version == V1 && h.has("cpuset") {
		if err := m.cpusetFill(h, h.dir); err != nil {
			return err
		}
	}
	return nil
}

// createParents makes the missing ancestors of h.dir below the mount point,
// preparing each one we create: v1 cpuset gets cpus/mems and
// clone_children, v2 gets its controllers enabled for its children.
func (m *manager) createParents(h *hier) error {
	parts := strings.Split(strings.Trim(m.path, "/"), "/")
	dir := h.mount
	for _, part := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, part)
		err := m.mkdir(dir)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return err
		}
		switch {
		case h.version == V2:
			if err := m.enableAllV2(dir); err != nil {
				return err
			}
		case h.has("cpuset"):
			if err := m.cpusetFill(h, dir); err != nil {
				return err
			}
			// New children of our parent then inherit cpus and mems from
			// the kernel, sparing a read and two writes per container.
			if err := m.write(dir, "cgroup.clone_children", "1"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Add implements Manager.
func (m *manager) Add(pid int) error { return m.add(pid, func(*hier) bool { return true }) }

// AddSome implements Manager.
func (m *manager) AddSome(pid int, memory bool) error {
	return m.add(pid, func(h *hier) bool { return h.hasController("memory") == memory })
}

func (h *hier) hasController(name string) bool {
	for _, c := range h.ctrls {
		if c == name {
			return true
		}
	}
	return false
}

func (m *manager) add(pid int, want func(*hier) bool) error {
	if pid <= 0 {
		return errdefs.Invalidf("cgroup add: invalid pid %d", pid)
	}
	val := strconv.Itoa(pid)
	for _, h := range m.hiers {
		if h.skipped || !want(h) {
			continue
		}
		err := m.writeProcs(h.dir, val)
		if err == nil {
			continue
		}
		if h.optional {
			m.tr.Step("cgroup", "skip optional hierarchy %s: %v", h.mount, err)
			h.skipped = true
			continue
		}
		if errors.Is(err, unix.ESRCH) {
			return errdefs.NotFoundf("adding process %d to cgroup %s: no such process", pid, h.dir)
		}
		return fmt.Errorf("adding process %d to cgroup %s: %w", pid, h.dir, err)
	}
	return nil
}

// writeProcs writes a pid to cgroup.procs. EINVAL can mean the task is
// still in TASK_NEW (just forked); runc retries the same way.
func (m *manager) writeProcs(dir, pid string) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = m.write(dir, "cgroup.procs", pid); !errors.Is(err, unix.EINVAL) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// Destroy implements Manager.
func (m *manager) Destroy() error {
	var errs []error
	for _, h := range m.hiers {
		if err := m.removeTree(h.dir); err != nil {
			if h.optional {
				m.tr.Step("cgroup", "skip optional hierarchy %s: %v", h.mount, err)
				continue
			}
			errs = append(errs, err)
			continue
		}
		// The parent (the "cfs" directory) stays, as Docker's and
		// Podman's do: making it again for every container (ten mkdirs
		// and the cpuset copy here) would cost each start ~0.4 ms.
		// RemoveParent takes it away when cfs is done with the host.
	}
	return errors.Join(errs...)
}

// RemoveParent removes the (empty) parent cgroup of path in every hierarchy
// of h, e.g. "/cfs" for "/cfs/<id>": what `cfs system prune` and the test
// suite's clean-up call. A parent still holding containers stays (EBUSY).
func RemoveParent(h *Host, path string, tr *trace.Tracer) error {
	m, err := New(h, path, tr)
	if err != nil {
		return err
	}
	mg := m.(*manager)
	var errs []error
	for _, x := range mg.hiers {
		parent := filepath.Dir(x.dir)
		if parent == x.mount {
			continue
		}
		if err := mg.rmdir(parent); err != nil && !errors.Is(err, unix.EBUSY) &&
			!errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", parent, err))
		}
	}
	return errors.Join(errs...)
}

// removeTree removes dir and any cgroups below it, deepest first. rmdir on
// a cgroup fails with EBUSY while tasks are still leaving it, so it is
// retried for about a second.
func (m *manager) removeTree(dir string) error {
	delay := time.Millisecond
	for attempt := 0; ; attempt++ {
		err := m.rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			return fmt.Errorf("removing cgroup %s: %w", dir, err)
		}
		// Sub-cgroups made by the container (nested runtimes, systemd).
		entries, rerr := os.ReadDir(dir)
		if rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return fmt.Errorf("removing cgroup %s: %w", dir, rerr)
		}
		sub := false
		for _, e := range entries {
			if e.IsDir() {
				sub = true
				if err := m.removeTree(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
		if sub {
			continue
		}
		if attempt >= 12 {
			return errdefs.Conflictf("removing cgroup %s: still has processes: %v", dir, err)
		}
		time.Sleep(delay)
		delay = min(delay*2, 100*time.Millisecond)
	}
}

// Pids implements Manager. It reads the hierarchy that every mode has: the
// cgroup2 one on unified hosts, otherwise the first required v1 one.
func (m *manager) Pids() ([]int, error) {
	h := m.primary()
	if h == nil {
		return nil, errdefs.Unsupportedf("cgroup %s: no hierarchy to read processes from", m.path)
	}
	return readPids(filepath.Join(h.dir, "cgroup.procs"))
}

func (m *manager) primary() *hier {
	if m.host.Mode == Unified {
		return m.v2
	}
	for _, c := range []string{"pids", "memory", "freezer", "cpu"} {
		if h, ok := m.v1[c]; ok {
			return h
		}
	}
	for _, h := range m.hiers {
		if !h.optional {
			return h
		}
	}
	return nil
}

func readPids(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading processes of cgroup: %w", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		p, err := strconv.Atoi(f)
		if err != nil {
			return nil, errdefs.Invalidf("%s: bad pid %q", file, f)
		}
		pids = append(pids, p)
	}
	return pids, nil
}

// Paths implements Manager.
func (m *manager) Paths() map[string]string {
	out := make(map[string]string, len(m.v1)+len(m.v2has)+1)
	for c, h := range m.v1 {
		out[c] = h.dir
	}
	if m.v2 != nil {
		out["unified"] = m.v2.dir
		for c := range m.v2has {
			out[c] = m.v2.dir
		}
	}
	return out
}

// Freeze implements Manager.
func (m *manager) Freeze() error {
	if h, ok := m.v1["freezer"]; ok {
		return m.freezeV1(h.dir)
	}
	if m.v2 != nil && !m.v2.skipped {
		return m.freezeV2(m.v2.dir, true)
	}
	return errdefs.Unsupportedf("freeze cgroup %s: no freezer on this host", m.path)
}

// Thaw implements Manager.
func (m *manager) Thaw() error {
	if h, ok := m.v1["freezer"]; ok {
		return m.thawV1(h.dir)
	}
	if m.v2 != nil && !m.v2.skipped {
		return m.freezeV2(m.v2.dir, false)
	}
	return errdefs.Unsupportedf("thaw cgroup %s: no freezer on this host", m.path)
}

// OOMKilled implements Manager.
func (m *manager) OOMKilled() (bool, error) {
	var n uint64
	var err error
	switch {
	case m.v1["memory"] != nil:
		n, err = readKeyed(m.v1["memory"].dir, "memory.oom_control", "oom_kill")
	case m.v2has["memory"]:
		n, err = readKeyed(m.v2.dir, "memory.events", "oom_kill")
	default:
		return false, errdefs.Unsupportedf("cgroup %s: no memory controller on this host", m.path)
	}
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading OOM kills of cgroup %s: %w", m.path, err)
	}
	return n > 0, nil
}

// Stats implements Manager.
func (m *manager) Stats() (*Stats, error) {
	s := &Stats{}
	if err := m.statsV1(s); err != nil {
		return nil, fmt.Errorf("reading stats of cgroup %s: %w", m.path, err)
	}
	if m.v2 != nil && !m.v2.skipped {
		if err := m.statsV2(s); err != nil {
			return nil, fmt.Errorf("reading stats of cgroup %s: %w", m.path, err)
		}
	}
	return s, nil
}

func (h *hier) has(ctrl string) bool {
	for _, c := range h.ctrls {
		if c == ctrl {
			return true
		}
	}
	return false
}

// --- file system primitives: every change is traced ---

func (m *manager) mkdir(dir string) error {
	m.tr.Step("cgroup", "mkdir %s", dir)
	if err := unix.Mkdir(dir, 0o755); err != nil {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	if m.mkdirHook != nil {
		m.mkdirHook(dir)
	}
	return nil
}

func (m *manager) rmdir(dir string) error {
	m.tr.Step("cgroup", "rmdir %s", dir)
	if err := unix.Rmdir(dir); err != nil {
		return &os.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	return nil
}

// write writes value to dir/file in one write(2), as cgroupfs expects. No
// O_CREAT: a missing file means the kernel lacks the feature, which callers
// want to see as ENOENT.
func (m *manager) write(dir, file, value string) error {
	p := dir + "/" + file
	m.tr.Step("cgroup", "write %s = %q", p, value)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, p, err)
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(value))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, p, err)
	}
	return nil
}

func readString(dir, file string) (string, error) {
	b, err := os.ReadFile(dir + "/" + file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// readUint reads a single number; "max" reads as 0 (no limit).
func readUint(dir, file string) (uint64, error) {
	s, err := readString(dir, file)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 reports -1 for some unlimited values.
		if s == "-1" {
			return 0, nil
		}
		return 0, fmt.Errorf("%s/%s: not a number: %q", dir, file, s)
	}
	return v, nil
}

// readKeyed reads the value of key from a "key value" per line file
// (memory.oom_control, memory.events, cpu.stat).
func readKeyed(dir, file, key string) (uint64, error) {
	vals, err := readKeyedAll(dir, file)
	if err != nil {
		return 0, err
	}
	return vals[key], nil
}

func readKeyedAll(dir, file string) (map[string]uint64, error) {
	s, err := readString(dir, file)
	if err != nil {
		return nil, err
	}
	out := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out, nil
}

func exists(p string) bool {
	return unix.Access(p, unix.F_OK) == nil
}
