//go:build !linux

package image

import (
	"io"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// UnpackLayer needs Linux (openat2, overlay whiteouts).
func UnpackLayer(dir string, r io.Reader, opts UnpackOptions) (UnpackStats, error) {
	return UnpackStats{}, errdefs.Unsupportedf("unpacking image layers needs Linux")
}

func detectArch(root string) string { return "" }

func syncFS(dir string) error { return nil }
