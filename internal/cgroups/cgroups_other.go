//go:build !linux

package cgroups

import (
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

// DetectHost reports that control groups exist only on Linux.
func DetectHost() (*Host, error) {
	return nil, errdefs.Unsupportedf("cgroups: only on Linux")
}

// New reports that control groups exist only on Linux.
func New(h *Host, path string, tr *trace.Tracer) (Manager, error) {
	return nil, errdefs.Unsupportedf("cgroups: only on Linux")
}

// MountV1Controllers reports that control groups exist only on Linux.
func MountV1Controllers(h *Host, dir string, controllers []string, tr *trace.Tracer) (*Host, error) {
	return nil, errdefs.Unsupportedf("cgroups: only on Linux")
}
