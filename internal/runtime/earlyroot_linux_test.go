package runtime

import (
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/ns"
)

// TestEarlyRoot: init mounts the root before decoding the spec only when
// nothing in the spec could change how: a new mount namespace, no user
// namespace (idmapped layers come first), no shared rootfs propagation.
func TestEarlyRoot(t *testing.T) {
	overlay := []mount.Mount{{Source: "overlay", Type: "overlay", Data: "lowerdir=/l"}}
	spec := func(prop string, types ...specs.LinuxNamespaceType) (*specs.Spec, ns.Plan) {
		s := &specs.Spec{Linux: &specs.Linux{RootfsPropagation: prop}}
		for _, t := range types {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: t})
		}
		p, err := ns.PlanFor(s.Linux.Namespaces)
		if err != nil {
			panic(err)
		}
		return s, p
	}
	cases := []struct {
		name   string
		prop   string
		types  []specs.LinuxNamespaceType
		mounts []mount.Mount
		want   bool
	}{
		{"engine default", "", []specs.LinuxNamespaceType{specs.MountNamespace, specs.PIDNamespace}, overlay, true},
		{"rslave", "rslave", []specs.LinuxNamespaceType{specs.MountNamespace}, overlay, true},
		{"shared propagation", "rshared", []specs.LinuxNamespaceType{specs.MountNamespace}, overlay, false},
		{"user namespace", "", []specs.LinuxNamespaceType{specs.MountNamespace, specs.UserNamespace}, overlay, false},
		{"no mount namespace", "", []specs.LinuxNamespaceType{specs.PIDNamespace}, overlay, false},
		{"ready rootfs (OCI bundle)", "", []specs.LinuxNamespaceType{specs.MountNamespace}, nil, false},
	}
	for _, tc := range cases {
		s, p := spec(tc.prop, tc.types...)
		if got := earlyRoot(s, p, tc.mounts); got != tc.want {
			t.Errorf("%s: earlyRoot = %v, want %v", tc.name, got, tc.want)
		}
	}
}
