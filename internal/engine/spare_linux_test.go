package engine

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestSpareFits: only a spec that runtime.Spawn would spawn exactly as the
// spare was spawned gets the spare.
func TestSpareFits(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	limit := int64(64 << 20)
	cases := map[string]struct {
		change func(*specs.Spec)
		fits   bool
	}{
		"default":        {func(*specs.Spec) {}, true},
		"terminal":       {func(s *specs.Spec) { s.Process.Terminal = true }, false},
		"host network":   {func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:5] }, false},
		"user namespace": {func(s *specs.Spec) { s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}} }, false},
		"cgroup parent":  {func(s *specs.Spec) { s.Linux.CgroupsPath = "/other/" + id }, false},
		"another ID":     {func(s *specs.Spec) { s.Linux.CgroupsPath = "/cfs/x" }, false},
		"memory limit": {func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		}, false},
		"pids limit only": {func(s *specs.Spec) {
			l := int64(10)
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &l}}
		}, true},
	}
	for name, c := range cases {
		s := spareSpec(id)
		c.change(s)
		if got := spareFits(s, id); got != c.fits {
			t.Errorf("%s: spareFits = %v, want %v", name, got, c.fits)
		}
	}
	// The spare's namespaces are a default detached container's.
	o := &RunOptions{Image: "busybox"}
	p, err := o.validate()
	if err != nil {
		t.Fatal(err)
	}
	s := buildSpec(&specInput{ID: id, Opts: o, Parsed: p, Cgroup: "/cfs/" + id})
	if !spareFits(s, id) || !spareCompatible(o) {
		t.Errorf("a default run -d does not fit the spare: namespaces %v", s.Linux.Namespaces)
	}
	for _, o := range []*RunOptions{{TTY: true}, {Interactive: true}, {Userns: "remap"}, {Network: "host"},
		{Resources: ResourceOptions{CgroupParent: "x"}}, {Resources: ResourceOptions{Memory: 1 << 30}}} {
		if spareCompatible(o) {
			t.Errorf("spareCompatible(%+v) = true", o)
		}
	}
}
