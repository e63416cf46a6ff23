package image

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// archCandidates are binaries nearly every root filesystem has; the first
// ELF file among them names the image's architecture.
var archCandidates = []string{"bin/busybox", "bin/sh", "usr/bin/env", "bin/ls", "sbin/init"}

// detectArch returns the GOARCH of the first candidate binary in the tree
// at root, or "" when none is found. Symlinks ("bin/sh -> busybox") are
// resolved with openat2(RESOLVE_IN_ROOT), so they cannot lead out of the
// tree.
func detectArch(root string) string {
	rfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	defer unix.Close(rfd)
	for _, c := range archCandidates {
		how := unix.OpenHow{Flags: unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV}
		fd, err := unix.Openat2(rfd, c, &how)
		if err != nil {
			continue
		}
		var st unix.Stat_t
		var hdr [20]byte
		n := 0
		if unix.Fstat(fd, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			n, _ = unix.Pread(fd, hdr[:], 0)
		}
		unix.Close(fd)
		if n == len(hdr) {
			if arch := elfArch(hdr[:]); arch != "" {
				return arch
			}
		}
	}
	return ""
}

// elfArch maps an ELF header's class, byte order and machine to a GOARCH.
func elfArch(h []byte) string {
	if len(h) < 20 || string(h[:4]) != "\x7fELF" {
		return ""
	}
	is64 := h[4] == 2
	var bo binary.ByteOrder = binary.LittleEndian
	if h[5] == 2 {
		bo = binary.BigEndian
	}
	le := h[5] == 1
	switch bo.Uint16(h[18:20]) {
	case 3:
		return "386"
	case 62:
		return "amd64"
	case 40:
		return "arm"
	case 183:
		return "arm64"
	case 8:
		switch {
		case is64 && le:
			return "mips64le"
		case is64:
			return "mips64"
		case le:
			return "mipsle"
		}
		return "mips"
	case 21:
		if le {
			return "ppc64le"
		}
		return "ppc64"
	case 22:
		return "s390x"
	case 243:
		return "riscv64"
	case 258:
		return "loong64"
	}
	return ""
}

// syncFS flushes the filesystem holding dir: one syncfs(2) instead of an
// fsync per unpacked file.
func syncFS(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}
