package store

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/mount"
)

// TestOpenMarksTopDirs: a new store spreads the containers' directories
// (root and staging) over the file system's block groups
// (mount.MarkTopDir); names and trash are left alone.
func TestOpenMarksTopDirs(t *testing.T) {
	const topdir = 0x00020000 // FS_TOPDIR_FL
	flags := func(dir string) (int, bool) {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		f, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
		return f, err == nil
	}
	root := filepath.Join(t.TempDir(), "containers")
	probe := filepath.Dir(root)
	mount.MarkTopDir(probe)
	if f, ok := flags(probe); !ok || f&topdir == 0 {
		t.Skipf("%s: the file system keeps no FS_TOPDIR_FL (flags %#x, %v)", probe, f, ok)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{root: true, s.stagingDir(): true, s.namesDir(): false, s.trashDir(): false} {
		f, _ := flags(dir)
		if got := f&topdir != 0; got != want {
			t.Errorf("%s: FS_TOPDIR_FL %v, want %v", dir, got, want)
		}
	}
}
