package cgroups

import (
	"errors"
	"github.com/cfs-org/cfs/internal/mount"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func parseFixture(t *testing.T, name string) *Host {
	t.Helper()
	mi, err := os.Open("testdata/mountinfo-" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer mi.Close()
	cg, err := os.Open("testdata/cgroups-" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer cg.Close()
	h, err := ParseHost(mi, cg)
	if err != nil {
		t.Fatalf("ParseHost(%s): %v", name, err)
	}
	return h
}

func TestParseHost(t *testing.T) {
	tests := []struct {
		fixture     string
		mode        Mode
		unified     string
		hierarchies int
		controllers map[string]Controller // a sample, not all
		absent      []string
		unmounted   []string
	}{
		{
			// This project's development VM: v1 controllers, hugetlb alone
			// on cgroup2, net_cls/net_prio/perf_event enabled but unmounted.
			fixture: "hybrid-host", mode: Hybrid, unified: "/sys/fs/cgroup/unified", hierarchies: 10,
			controllers: map[string]Controller{
				"memory":       {V1, "/sys/fs/cgroup/memory"},
				"cpu":          {V1, "/sys/fs/cgroup/cpu"},
				"cpuacct":      {V1, "/sys/fs/cgroup/cpuacct"},
				"name=systemd": {V1, "/sys/fs/cgroup/systemd"},
				"hugetlb":      {V2, "/sys/fs/cgroup/unified"},
			},
			absent:    []string{"io", "net_cls", "rw"},
			unmounted: []string{"net_cls", "perf_event", "net_prio"},
		},
		{
			fixture: "v2", mode: Unified, unified: "/sys/fs/cgroup", hierarchies: 1,
			controllers: map[string]Controller{
				"memory":  {V2, "/sys/fs/cgroup"},
				"io":      {V2, "/sys/fs/cgroup"},
				"cpu":     {V2, "/sys/fs/cgroup"},
				"cpuset":  {V2, "/sys/fs/cgroup"},
				"hugetlb": {V2, "/sys/fs/cgroup"},
				"misc":    {V2, "/sys/fs/cgroup"},
			},
			absent:    []string{"blkio", "cpuacct", "devices", "freezer"},
			unmounted: []string{"net_cls", "perf_event", "net_prio"},
		},
		{
			// CentOS 7 style, with a bind mount of memory that must not
			// count as a second hierarchy.
			fixture: "v1", mode: Legacy, hierarchies: 11,
			controllers: map[string]Controller{
				"cpu":          {V1, "/sys/fs/cgroup/cpu,cpuacct"},
				"cpuacct":      {V1, "/sys/fs/cgroup/cpu,cpuacct"},
				"net_cls":      {V1, "/sys/fs/cgroup/net_cls,net_prio"},
				"memory":       {V1, "/sys/fs/cgroup/memory"},
				"name=systemd": {V1, "/sys/fs/cgroup/systemd"},
				"hugetlb":      {V1, "/sys/fs/cgroup/hugetlb"},
			},
			absent: []string{"seclabel", "xattr", "io"},
		},
		{
			// systemd's "hybrid": cgroup2 at /unified; cpuset is not bound
			// to v1 so it is there; disabled hugetlb is nowhere.
			fixture: "systemd-hybrid", mode: Hybrid, unified: "/sys/fs/cgroup/unified", hierarchies: 5,
			controllers: map[string]Controller{
				"cpuset": {V2, "/sys/fs/cgroup/unified"},
				"memory": {V1, "/sys/fs/cgroup/memory"},
			},
			absent: []string{"hugetlb"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.fixture, func(t *testing.T) {
			h := parseFixture(t, tc.fixture)
			if h.Mode != tc.mode {
				t.Errorf("Mode = %v, want %v", h.Mode, tc.mode)
			}
			if h.Unified != tc.unified {
				t.Errorf("Unified = %q, want %q", h.Unified, tc.unified)
			}
			if len(h.Hierarchies) != tc.hierarchies {
				t.Errorf("%d hierarchies, want %d: %+v", len(h.Hierarchies), tc.hierarchies, h.Hierarchies)
			}
			for name, want := range tc.controllers {
				if got, ok := h.Controller(name); !ok || got != want {
					t.Errorf("Controller(%q) = %+v, %v; want %+v", name, got, ok, want)
				}
			}
			for _, name := range tc.absent {
				if c, ok := h.Controller(name); ok {
					t.Errorf("Controller(%q) = %+v, want absent", name, c)
				}
			}
			got := slices.Clone(h.Unmounted)
			slices.Sort(got)
			want := slices.Clone(tc.unmounted)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("Unmounted = %v, want %v", got, want)
			}
		})
	}
}

func TestParseHostWithoutProcCgroups(t *testing.T) {
	mi, err := os.Open("testdata/mountinfo-v2")
	if err != nil {
		t.Fatal(err)
	}
	defer mi.Close()
	h, err := ParseHost(mi, nil)
	if err != nil {
		t.Fatal(err)
	}
	if h.Mode != Unified || h.Unified != "/sys/fs/cgroup" {
		t.Errorf("got mode %v unified %q", h.Mode, h.Unified)
	}
	// Without /proc/cgroups the v2 controllers are unknown until
	// DetectHost reads cgroup.controllers.
	h.setV2Controllers([]string{"cpu", "memory", "pids"})
	if c, ok := h.Controller("memory"); !ok || c.Version != V2 {
		t.Errorf("memory after setV2Controllers: %+v %v", c, ok)
	}
	if got := h.Hierarchies[0].Controllers; !slices.Equal(got, []string{"cpu", "memory", "pids"}) {
		t.Errorf("hierarchy controllers = %v", got)
	}
}

func TestParseHostErrors(t *testing.T) {
	tests := []struct {
		name, mountinfo, cgroups string
		want                     error
	}{
		{"no cgroup mounts", "22 27 0:21 / /proc rw - proc proc rw\n", "", errdefs.ErrUnsupported},
		{"no separator", "22 27 0:21 / /proc rw proc proc rw\n", "", errdefs.ErrInvalid},
		{"short line", "22 27 / - cgroup2 cgroup2 rw\n", "", errdefs.ErrInvalid},
		{"bad proc cgroups", "1 2 0:1 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "memory x 1 1\n", errdefs.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseHost(strings.NewReader(tc.mountinfo), strings.NewReader(tc.cgroups))
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:         "/plain",
		`/a\040b`:        "/a b",
		`/tab\011x\134y`: "/tab\tx\\y",
		`/trailing\04`:   `/trailing\04`,
		`/notoctal\999`:  `/notoctal\999`,
	} {
		if got := mount.UnescapeMountinfo(in); got != want {
			t.Errorf("UnescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
	h := parseFixture(t, "v1")
	for _, hi := range h.Hierarchies {
		if strings.Contains(hi.Mount, `\`) {
			t.Errorf("escaped mount point %q", hi.Mount)
		}
	}
}

func TestModeString(t *testing.T) {
	for m, want := range map[Mode]string{Legacy: "legacy (cgroup v1)", Hybrid: "hybrid (cgroup v1 + v2)", Unified: "unified (cgroup v2)", 0: "Mode(0)"} {
		if m.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(m), m.String(), want)
		}
	}
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"/cfs/abc", "/cfs/abc", true},
		{"cfs/abc", "/cfs/abc", true},
		{"/cfs//abc/", "/cfs/abc", true},
		{"", "", false},
		{"/", "", false},
		{"/cfs/../etc", "", false},
		{"..", "", false},
		{"/cfs/a\nb", "", false},
	}
	for _, tc := range tests {
		got, err := cleanPath(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("cleanPath(%q): %v is not ErrInvalid", tc.in, err)
		}
	}
}

// withRoot returns a copy of h with every mount point moved under root, so
// a host parsed from real fixtures can drive a fake tree in a test.
func (h *Host) withRoot(root string) *Host {
	n := h.clone()
	for k, c := range n.Controllers {
		c.Mount = root + c.Mount
		n.Controllers[k] = c
	}
	for i := range n.Hierarchies {
		n.Hierarchies[i].Mount = root + n.Hierarchies[i].Mount
	}
	if n.Unified != "" {
		n.Unified = root + n.Unified
	}
	return n
}
