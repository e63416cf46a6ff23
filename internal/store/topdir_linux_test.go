package store

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func dirFlags(t *testing.T, dir string) (int, bool) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetInt(fd, unix.FS_IOC_GETFLAGS)
	return flags, err == nil
}

// TestOpenMarksTopDirs: a new store spreads the containers' directories
// (root and staging) over the file system's block groups; names and trash
// are left alone.
func TestOpenMarksTopDirs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "containers")
	probe := filepath.Dir(root)
	MarkTopDir(probe)
	if f, ok := dirFlags(t, probe); !ok || f&fsTopdirFL == 0 {
		t.Skipf("%s: the file system keeps no FS_TOPDIR_FL (flags %#x, %v)", probe, f, ok)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{root: true, s.stagingDir(): true, s.namesDir(): false, s.trashDir(): false} {
		f, _ := dirFlags(t, dir)
		if got := f&fsTopdirFL != 0; got != want {
			t.Errorf("%s: FS_TOPDIR_FL %v, want %v", dir, got, want)
		}
	}
}
