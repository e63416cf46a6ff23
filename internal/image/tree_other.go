//go:build !linux

package image

import (
	"io"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// TreeSource is one directory of an overlay stack.
type TreeSource struct {
	Dir         string
	IDShift     int
	UserXattr   bool
	MountPoints []string
}

// WriteLayerDiff needs Linux (openat, overlay whiteouts).
func WriteLayerDiff(w io.Writer, src TreeSource) error {
	return errdefs.Unsupportedf("writing layers needs Linux")
}

// WriteFlattened needs Linux (openat, overlay whiteouts).
func WriteFlattened(w io.Writer, srcs []TreeSource) error {
	return errdefs.Unsupportedf("flattening layers needs Linux")
}
