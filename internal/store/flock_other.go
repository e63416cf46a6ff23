//go:build !unix

package store

import (
	"os"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// flock: cfs runs containers only on Linux; elsewhere the store is built for
// its tests and tools, which do not lock.
func flock(f *os.File) error {
	return errdefs.Unsupportedf("locking %q: flock is not available on this platform", f.Name())
}
