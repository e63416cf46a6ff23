package store

import (
	"path/filepath"
	"testing"

	"github.com/cfs-org/cfs/internal/mount"
)

// TestOpenMarksTopDirs: a new store spreads the containers' directories
// (root and staging) over the file system's block groups
// (mount.MarkTopDir); names and trash are left alone.
func TestOpenMarksTopDirs(t *testing.T) {
	root := filepath.Join(t.TempDir(), "containers")
	probe := filepath.Dir(root)
	mount.MarkTopDir(probe)
	if top, err := mount.IsTopDir(probe); err != nil || !top {
		t.Skipf("%s: the file system keeps no FS_TOPDIR_FL (%v)", probe, err)
	}
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]bool{root: true, s.stagingDir(): true, s.namesDir(): false, s.trashDir(): false} {
		if got, _ := mount.IsTopDir(dir); got != want {
			t.Errorf("%s: FS_TOPDIR_FL %v, want %v", dir, got, want)
		}
	}
}
