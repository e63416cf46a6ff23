// Package ns maps OCI namespace settings to clone flags and id maps.
package ns

import (
	"fmt"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Clone flag values from <sched.h>, kept here so this file builds anywhere.
const (
	NEWNS     = 0x00020000
	NEWCGROUP = 0x02000000
	NEWUTS    = 0x04000000
	NEWIPC    = 0x08000000
	NEWUSER   = 0x10000000
	NEWPID    = 0x20000000
	NEWNET    = 0x40000000
	NEWTIME   = 0x00000080
)

var flagByType = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     NEWPID,
	specs.NetworkNamespace: NEWNET,
	specs.MountNamespace:   NEWNS,
	specs.IPCNamespace:     NEWIPC,
	specs.UTSNamespace:     NEWUTS,
	specs.UserNamespace:    NEWUSER,
	specs.CgroupNamespace:  NEWCGROUP,
	specs.TimeNamespace:    NEWTIME,
}

// Plan is what the runtime does with a spec's namespaces: create the ones
// in Clone (one clone(2) with these flags) and join the ones in Join
// (setns(2) on the path), in the kernel's required order.
type Plan struct {
	Clone uintptr
	Join  map[specs.LinuxNamespaceType]string
}

// Has reports whether t is created or joined.
func (p Plan) Has(t specs.LinuxNamespaceType) bool {
	_, joined := p.Join[t]
	return joined || p.Clone&flagByType[t] != 0
}

// PlanFor validates namespaces and returns the plan.
func PlanFor(namespaces []specs.LinuxNamespace) (Plan, error) {
	p := Plan{Join: map[specs.LinuxNamespaceType]string{}}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range namespaces {
		f, ok := flagByType[n.Type]
		if !ok {
			return p, fmt.Errorf("namespace type %q: unknown", n.Type)
		}
		if seen[n.Type] {
			return p, fmt.Errorf("namespace type %q: given twice", n.Type)
		}
		seen[n.Type] = true
		if n.Path != "" {
			p.Join[n.Type] = n.Path
		} else {
			p.Clone |= f
		}
	}
	return p, nil
}

// FlagString renders clone flags as "CLONE_NEWNS|CLONE_NEWPID".
func FlagString(f uintptr) string {
	names := []struct {
		f uintptr
		n string
	}{{NEWUSER, "CLONE_NEWUSER"}, {NEWNS, "CLONE_NEWNS"}, {NEWPID, "CLONE_NEWPID"}, {NEWNET, "CLONE_NEWNET"},
		{NEWUTS, "CLONE_NEWUTS"}, {NEWIPC, "CLONE_NEWIPC"}, {NEWCGROUP, "CLONE_NEWCGROUP"}, {NEWTIME, "CLONE_NEWTIME"}}
	s := ""
	for _, n := range names {
		if f&n.f != 0 {
			if s != "" {
				s += "|"
			}
			s += n.n
		}
	}
	if s == "" {
		return "0"
	}
	return s
}
