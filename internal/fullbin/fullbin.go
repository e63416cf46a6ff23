// Package fullbin carries the full cfs inside the lean front end that
// `make build` makes bin/cfs, and runs it.
//
// Every cfs process pays for the package initializers it links before
// main: with the registry client, TLS, the compressors and the progress
// bars that is about 1 ms more on each `cfs run`, `cfs ps` or `cfs exec`
// (cfs version: 3.2 ms instead of 2.0). So `make build` builds cfs twice:
// the full program (payload/cfs-full, the same as a plain
// `go build ./cmd/cfs`), then, with the cfs_lean build tag, a front end
// without the commands that move images in and out of the store (pull,
// push, login, logout, import, load, save, commit, also under `cfs image`), which embeds
// the full one and hands those commands to it (Exec).
package fullbin

import (
	"embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

//go:embed all:payload
var payload embed.FS

const binName = "payload/cfs-full"

// ErrNone means this binary carries no full cfs: it was built with the
// cfs_lean tag but not by make.
var ErrNone = errors.New("this cfs front end carries no full cfs to run the command: build cfs with make")

// Exec runs the full cfs with argv in this process's place: it never
// returns but with an error. The program is copied into a sealed memfd
// (about 3 ms for its 17 MB) and executed from there, so it needs no
// file on disk, and leaves none.
func Exec(argv []string) error {
	src, err := payload.Open(binName)
	if err != nil {
		return ErrNone
	}
	defer src.Close()
	fd, err := unix.MemfdCreate("cfs", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("running the full cfs: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "cfs-full")
	defer f.Close()
	if _, err := io.Copy(f, src); err != nil {
		return fmt.Errorf("running the full cfs: %w", err)
	}
	seals := unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("running the full cfs: sealing its memfd: %w", err)
	}
	// The kernel opens the path before it closes the close-on-exec memfd.
	path := "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("running the full cfs: exec: %w", err)
	}
	return nil
}
