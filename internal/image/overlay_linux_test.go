package image

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpaqueDirsUnderOverlay mounts real overlays of two unpacked layers,
// as the runtime does: plain (trusted.overlay.opaque) and with
// "userxattr" (user.overlay.opaque, what --userns remap containers
// mount). Both must hide the lower layer's files in the opaque directory
// and the whited-out file, and neither may honour overlay xattrs that a
// layer carries in its tar.
func TestOpaqueDirsUnderOverlay(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	lower := filepath.Join(base, "lower")
	upper := filepath.Join(base, "upper")
	for _, d := range []string{lower, upper} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	unpack := func(dir string, entries []tarEntry) {
		if _, err := UnpackLayer(dir, bytes.NewReader(buildTar(t, entries)), UnpackOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	unpack(lower, []tarEntry{
		{name: "opq/", typ: tar.TypeDir},
		{name: "opq/old", data: "old"},
		{name: "keep/", typ: tar.TypeDir},
		{name: "keep/gone", data: "x"},
		{name: "keep/stays", data: "x"},
		{name: "sneaky/", typ: tar.TypeDir},
		{name: "sneaky/lower-file", data: "x"},
	})
	unpack(upper, []tarEntry{
		{name: "opq/", typ: tar.TypeDir},
		{name: "opq/.wh..wh..opq"},
		{name: "opq/new", data: "new"},
		{name: "keep/.wh.gone"},
		// A layer may not mark a directory opaque by xattr.
		{name: "sneaky/", typ: tar.TypeDir, pax: map[string]string{
			"SCHILY.xattr.user.overlay.opaque": "y", "SCHILY.xattr.trusted.overlay.opaque": "y"}},
	})
	if v := getxattr(filepath.Join(upper, "sneaky"), overlayUserOpaqueXattr); v != "" {
		t.Errorf("a layer's own user.overlay.opaque was kept: %q", v)
	}
	for _, opts := range []string{"", ",userxattr"} {
		t.Run("options"+opts, func(t *testing.T) {
			mnt := filepath.Join(t.TempDir(), "merged")
			if err := os.Mkdir(mnt, 0o755); err != nil {
				t.Fatal(err)
			}
			data := "lowerdir=" + upper + ":" + lower + opts
			if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, data); err != nil {
				t.Skipf("cannot mount overlay (%s): %v", data, err)
			}
			t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
			for dir, want := range map[string]string{"opq": "new", "keep": "stays", "sneaky": "lower-file"} {
				ents, err := os.ReadDir(filepath.Join(mnt, dir))
				if err != nil {
					t.Fatal(err)
				}
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				sort.Strings(names)
				if got := strings.Join(names, ","); got != want {
					t.Errorf("%s: sees %q, want %q", dir, got, want)
				}
			}
		})
	}
}
