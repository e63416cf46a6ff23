package mount

import (
	"os"
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

// TestMarkTopDir: the flag is set, and set once (the other flags stay).
func TestMarkTopDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tops")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	before, ok := dirFlags(t, dir)
	if !ok {
		t.Skipf("%s: the file system has no inode flags", dir)
	}
	MarkTopDir(dir)
	after, _ := dirFlags(t, dir)
	if after&fsTopdirFL == 0 {
		t.Skipf("%s: the file system keeps no FS_TOPDIR_FL (flags %#x)", dir, after)
	}
	if after != before|fsTopdirFL {
		t.Errorf("flags %#x, want %#x", after, before|fsTopdirFL)
	}
	MarkTopDir(dir)
	if again, _ := dirFlags(t, dir); again != after {
		t.Errorf("second call: flags %#x, want %#x", again, after)
	}
}
