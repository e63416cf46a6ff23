package mount

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMarkTopDir: the flag is set, and set once.
func TestMarkTopDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tops")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if top, err := IsTopDir(dir); err != nil || top {
		t.Skipf("%s: no inode flags, or set already (%v, %v)", dir, top, err)
	}
	MarkTopDir(dir)
	if top, _ := IsTopDir(dir); !top {
		t.Skipf("%s: the file system keeps no FS_TOPDIR_FL", dir)
	}
	MarkTopDir(dir)
	if top, _ := IsTopDir(dir); !top {
		t.Error("a second MarkTopDir cleared the flag")
	}
}
