//go:build unix

package store

import (
	"errors"
	"os"
	"syscall"
)

// flock takes an exclusive lock on f, waiting as long as it takes.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
