package engine

import "github.com/opencontainers/runtime-spec/specs-go"

// ResourceOptions are Docker's resource flags (--memory, --cpus, ...).
// (Filled in by the cgroups work: issue 3.)
type ResourceOptions struct {
	CgroupParent string
}

// Spec validates the options and returns the runtime-spec resources, nil
// when no limit is asked for.
func (r *ResourceOptions) Spec() (*specs.LinuxResources, error) { return nil, nil }
