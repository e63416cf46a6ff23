package cli

import (
	"github.com/spf13/pflag"

	"github.com/cfs-org/cfs/internal/engine"
)

// addResourceFlags registers Docker's resource flags on a run/create/update
// command.
func addResourceFlags(f *pflag.FlagSet, r *engine.ResourceOptions) {
	f.StringVar(&r.CgroupParent, "cgroup-parent", "", "parent cgroup for the container (default /cfs)")
}
