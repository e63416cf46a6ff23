package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func lstat(t *testing.T, p string) *unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func getxattr(p, name string) string {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func TestUnpackLayerKeepsMetadata(t *testing.T) {
	requireRoot(t)
	dirTime := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	data := buildTar(t, []tarEntry{
		{name: "./", typ: tar.TypeDir, mode: 0o751, mtime: dirTime},
		{name: "data/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1000, mtime: dirTime},
		{name: "data/suid", data: "x", mode: 0o4755, uid: 0, gid: 0},
		{name: "data/sgid-owned", data: "y", mode: 0o2711, uid: 1000, gid: 1001},
		{name: "data/link", typ: tar.TypeSymlink, link: "/etc/passwd", uid: 5, gid: 6},
		{name: "data/hl", typ: tar.TypeLink, link: "data/sgid-owned"},
		{name: "data/fifo", typ: tar.TypeFifo, mode: 0o640},
		{name: "data/x", data: "attrs", pax: map[string]string{
			"SCHILY.xattr.user.foo":                 "bar",
			"SCHILY.xattr.trusted.overlay.redirect": "/etc",
		}},
		{name: "deep/er/file", data: "no parents in the archive"},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	})
	dir := t.TempDir()
	stats, err := UnpackLayer(dir, bytes.NewReader(data), UnpackOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if stats.Entries != 10 || stats.Size != int64(len("x")+len("y")+len("attrs")+len("no parents in the archive")) {
		t.Errorf("stats %+v", stats)
	}
	p := func(s string) string { return filepath.Join(dir, s) }
	if st := lstat(t, p("data/suid")); st.Mode&0o7777 != 0o4755 || st.Uid != 0 {
		t.Errorf("suid: mode %o uid %d", st.Mode&0o7777, st.Uid)
	}
	if st := lstat(t, p("data/sgid-owned")); st.Mode&0o7777 != 0o2711 || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("sgid-owned: mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st := lstat(t, p("data/sgid-owned")); st.Mtim.Sec != testMtime.Unix() {
		t.Errorf("file mtime %d, want %d", st.Mtim.Sec, testMtime.Unix())
	}
	if target, err := os.Readlink(p("data/link")); err != nil || target != "/etc/passwd" {
		t.Errorf("symlink: %q %v", target, err)
	}
	if st := lstat(t, p("data/link")); st.Uid != 5 || st.Gid != 6 || st.Mtim.Sec != testMtime.Unix() {
		t.Errorf("symlink owner %d:%d mtime %d", st.Uid, st.Gid, st.Mtim.Sec)
	}
	if a, b := lstat(t, p("data/hl")), lstat(t, p("data/sgid-owned")); a.Ino != b.Ino || a.Nlink != 2 {
		t.Errorf("hardlink: inodes %d %d nlink %d", a.Ino, b.Ino, a.Nlink)
	}
	if st := lstat(t, p("data/fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO || st.Mode&0o7777 != 0o640 {
		t.Errorf("fifo mode %o", st.Mode)
	}
	if v := getxattr(p("data/x"), "user.foo"); v != "bar" {
		t.Errorf("user.foo = %q", v)
	}
	if v := getxattr(p("data/x"), "trusted.overlay.redirect"); v != "" {
		t.Errorf("trusted.overlay.redirect from the archive was kept: %q", v)
	}
	if st := lstat(t, p("deep/er")); st.Mode&0o7777 != 0o755 || st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("implicit parent mode %o", st.Mode)
	}
	// Directory modes and times are set after their contents.
	if st := lstat(t, p("data")); st.Mode&0o7777 != 0o750 || st.Uid != 1000 || st.Mtim.Sec != dirTime.Unix() {
		t.Errorf("data/: mode %o uid %d mtime %d", st.Mode&0o7777, st.Uid, st.Mtim.Sec)
	}
	if st := lstat(t, dir); st.Mode&0o7777 != 0o751 || st.Mtim.Sec != dirTime.Unix() {
		t.Errorf("root: mode %o mtime %d", st.Mode&0o7777, st.Mtim.Sec)
	}
	if st := lstat(t, p("tmp")); st.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode %o", st.Mode&0o7777)
	}
}

func TestUnpackLayerWhiteouts(t *testing.T) {
	requireRoot(t)
	data := buildTar(t, []tarEntry{
		{name: "data/", typ: tar.TypeDir},
		{name: "data/.wh.gone", data: ""},
		{name: "opq/", typ: tar.TypeDir},
		{name: "opq/.wh..wh..opq"},
		{name: "opq/new.txt", data: "new"},
		{name: "implicit/.wh..wh..opq"},
		{name: ".wh..wh.plnk/", typ: tar.TypeDir},
		{name: "dev/wh", typ: tar.TypeChar},
	})
	dir := t.TempDir()
	if _, err := UnpackLayer(dir, bytes.NewReader(data), UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"data/gone", "dev/wh"} {
		st := lstat(t, filepath.Join(dir, name))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s: mode %o rdev %d, want a 0/0 char device", name, st.Mode, st.Rdev)
		}
	}
	for _, name := range []string{"opq", "implicit"} {
		for _, x := range []string{overlayOpaqueXattr, overlayUserOpaqueXattr} {
			if v := getxattr(filepath.Join(dir, name), x); v != "y" {
				t.Errorf("%s: %s = %q", name, x, v)
			}
		}
	}
	for _, name := range []string{"data/.wh.gone", "opq/.wh..wh..opq", ".wh..wh.plnk"} {
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists in the layer: %v", name, err)
		}
	}
}

// Replacing an existing path must unlink it first: never write through a
// hardlink or symlink planted by an earlier entry.
func TestUnpackLayerReplacesWithoutFollowing(t *testing.T) {
	requireRoot(t)
	outside := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(outside, []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := buildTar(t, []tarEntry{
		{name: "etc/passwd", data: "root"},
		{name: "passwd-link", typ: tar.TypeLink, link: "etc/passwd"},
		{name: "passwd-link", data: "evil"},
		{name: "sym", typ: tar.TypeSymlink, link: outside},
		{name: "sym", data: "evil"},
		{name: "dup", data: "one"},
		{name: "dup", data: "two"},
		{name: "was-dir/sub/f", data: "f"},
		{name: "was-dir", data: "now a file"},
		{name: "was-file", data: "f"},
		{name: "was-file/", typ: tar.TypeDir},
	})
	dir := t.TempDir()
	if _, err := UnpackLayer(dir, bytes.NewReader(data), UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"etc/passwd": "root", "passwd-link": "evil", "sym": "evil", "dup": "two", "was-dir": "now a file",
	} {
		if got := readFile(t, filepath.Join(dir, name)); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if got := readFile(t, outside); got != "original" {
		t.Errorf("file outside the layer changed: %q", got)
	}
	if st := lstat(t, filepath.Join(dir, "was-file")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("was-file is not a directory: %o", st.Mode)
	}
}

func TestUnpackLayerRejects(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		entries []tarEntry
		want    string
	}{
		{"dotdot", []tarEntry{{name: "a/../../x", data: "x"}}, `layer entry "a/../../x": path escapes the layer`},
		{"absolute", []tarEntry{{name: "/x", data: "x"}}, `layer entry "/x": absolute path escapes the layer`},
		{"block device", []tarEntry{{name: "sda", typ: tar.TypeBlock, major: 8}}, `layer entry "sda": block device 8:0`},
		{"char device", []tarEntry{{name: "null", typ: tar.TypeChar, major: 1, minor: 3}}, `layer entry "null": character device 1:3`},
		{"relative symlink parent", []tarEntry{
			{name: "sub/", typ: tar.TypeDir},
			{name: "lnk", typ: tar.TypeSymlink, link: "sub"},
			{name: "lnk/f", data: "x"},
		}, `layer entry "lnk/f": parent "lnk" is a symlink`},
		{"deep symlink parent", []tarEntry{
			{name: "a/lnk", typ: tar.TypeSymlink, link: "/"},
			{name: "a/lnk/b/c", data: "x"},
		}, `layer entry "a/lnk/b/c": parent "a/lnk" is a symlink`},
		{"file parent", []tarEntry{{name: "f", data: "x"}, {name: "f/g", data: "y"}}, `layer entry "f/g": parent "f" is not a directory`},
		{"hardlink outside", []tarEntry{{name: "l", typ: tar.TypeLink, link: "../../etc/shadow"}}, `layer entry "l": hardlink target "../../etc/shadow" escapes the layer`},
		{"hardlink missing", []tarEntry{{name: "l", typ: tar.TypeLink, link: "nope"}}, `layer entry "l": hardlink target "nope" is not in the layer`},
		{"hardlink via symlink", []tarEntry{
			{name: "s", typ: tar.TypeSymlink, link: "/etc"},
			{name: "l", typ: tar.TypeLink, link: "s/passwd"},
		}, `layer entry "l": parent "s" is a symlink`},
		{"hardlink to dir", []tarEntry{{name: "d/", typ: tar.TypeDir}, {name: "l", typ: tar.TypeLink, link: "d"}}, `hardlink target "d" is a directory`},
		{"root as file", []tarEntry{{name: ".", data: "x"}}, `names the layer root`},
		{"too big", []tarEntry{{name: "big", data: strings.Repeat("x", 2000)}}, `layer entry "big": 2000 bytes exceed the layer size limit of 1000 bytes`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sandbox := t.TempDir()
			dir := filepath.Join(sandbox, "a", "b", "layer")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := UnpackLayer(dir, bytes.NewReader(buildTar(t, tc.entries)), UnpackOptions{MaxSize: 1000})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("UnpackLayer: %v, want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, errdefs.ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
			assertOnlyLayer(t, sandbox, dir)
		})
	}
}

// assertOnlyLayer fails when anything exists under sandbox outside dir.
func assertOnlyLayer(t *testing.T, sandbox, dir string) {
	t.Helper()
	filepath.WalkDir(sandbox, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return filepath.SkipDir
		}
		if !strings.HasPrefix(dir, p) {
			t.Errorf("written outside the layer: %s", p)
		}
		return nil
	})
}

func TestUnpackLayerTruncated(t *testing.T) {
	requireRoot(t)
	data := buildTar(t, []tarEntry{{name: "ok", data: "fine"}, {name: "big", data: strings.Repeat("z", 5000)}})
	cut := data[:512*3+1000] // "ok" header+data, "big" header, then 1000 of 5000 bytes
	_, err := UnpackLayer(t.TempDir(), bytes.NewReader(cut), UnpackOptions{})
	if err == nil || !strings.Contains(err.Error(), `layer entry "big": archive is truncated`) {
		t.Fatalf("UnpackLayer: %v", err)
	}
}

// The same policy holds on kernels without openat2.
func TestUnpackLayerWithoutOpenat2(t *testing.T) {
	testNoOpenat2 = true
	defer func() { testNoOpenat2 = false }()
	t.Run("metadata", TestUnpackLayerKeepsMetadata)
	t.Run("replace", TestUnpackLayerReplacesWithoutFollowing)
	t.Run("rejects", TestUnpackLayerRejects)
}
