package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	requireRoot(t)
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeContents lists blobs and layer dirs, temp names included.
func storeContents(t *testing.T, s *Store) (blobs, layers []string) {
	t.Helper()
	for _, d := range []struct {
		dir string
		out *[]string
	}{{s.blobDir(), &blobs}, {s.layerDir(), &layers}} {
		ents, err := os.ReadDir(d.dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			*d.out = append(*d.out, e.Name())
		}
	}
	return blobs, layers
}

func indexNames(t *testing.T, s *Store) []string {
	t.Helper()
	idx, err := s.readIndex()
	if err != nil {
		t.Fatal(err)
	}
	return sortedNames(idx.Images)
}

func TestImportSharedImages(t *testing.T) {
	dir := sharedImages(t)
	s := newStore(t)
	tests := []struct {
		file, name, lookup, norm string
		paths                    []string
	}{
		{"tinycore-7.0-core.gz", "TinyCore", "TINYCORE", "tinycore:latest", []string{"bin/busybox", "init", "etc/init.d/tc-config"}},
		{"slitaz-4.0-rootfs.lzma", "SlitazOS", "slitazos", "slitazos:latest", []string{"bin/busybox", "init", "etc/slitaz-release"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := s.Import(f, tc.name, ImportOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Get(tc.lookup)
			if err != nil {
				t.Fatalf("Get(%q): %v", tc.lookup, err)
			}
			if got.Name != tc.norm || got.ID != img.ID || len(got.Layers) != 1 {
				t.Fatalf("Get(%q) = %s %s %v", tc.lookup, got.Name, got.ID, got.Layers)
			}
			if got.Config.Architecture != "386" || got.Config.OS != "linux" {
				t.Errorf("platform %s/%s, want linux/386", got.Config.OS, got.Config.Architecture)
			}
			if strings.Join(got.Config.Config.Cmd, " ") != "/bin/sh" || !hasEnv(got.Config.Config.Env, "PATH") {
				t.Errorf("config %+v", got.Config.Config)
			}
			if len(got.Config.RootFS.DiffIDs) != 1 || got.Config.RootFS.DiffIDs[0].Encoded() != filepath.Base(got.Layers[0]) {
				t.Errorf("diff IDs %v vs layer %s", got.Config.RootFS.DiffIDs, got.Layers[0])
			}
			if got.Size < 1<<20 {
				t.Errorf("size %d", got.Size)
			}
			for _, p := range tc.paths {
				st := lstat(t, filepath.Join(got.Layers[0], p))
				if st.Uid != 0 || st.Gid != 0 {
					t.Errorf("%s owned by %d:%d, want root", p, st.Uid, st.Gid)
				}
			}
			// The layer blob is an uncompressed tar whose digest is the diff ID.
			blob := s.BlobPath(got.Config.RootFS.DiffIDs[0])
			bf, err := os.Open(blob)
			if err != nil {
				t.Fatal(err)
			}
			d, err := digest.SHA256.FromReader(bf)
			bf.Close()
			if err != nil || d != got.Config.RootFS.DiffIDs[0] {
				t.Errorf("layer blob digest %s, want %s (%v)", d, got.Config.RootFS.DiffIDs[0], err)
			}
			for _, ref := range []string{img.ID.Encoded()[:12], img.ID.String(), strings.ToUpper(img.ID.Encoded()[:8])} {
				if byID, err := s.Get(ref); err != nil || byID.ID != img.ID {
					t.Errorf("Get(%q) = %v, %v", ref, byID, err)
				}
			}
		})
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, img := range list {
		names = append(names, img.Name)
	}
	if strings.Join(names, ",") != "slitazos:latest,tinycore:latest" {
		t.Fatalf("List: %v", names)
	}
}

func TestImportCodecs(t *testing.T) {
	s := newStore(t)
	tarData := buildTar(t, []tarEntry{
		{name: "bin/", typ: tar.TypeDir},
		{name: "bin/tool", data: "tool", mode: 0o755},
		{name: "etc/hostname", data: "box\n"},
	})
	cpioData := buildCpio([]cpioEntry{
		{name: "bin", mode: sIFDIR | 0o755},
		{name: "bin/tool", mode: sIFREG | 0o755, data: "tool", ino: 1, nlink: 2},
		{name: "bin/tool2", mode: sIFREG | 0o755, ino: 1, nlink: 2},
		{name: "etc/hostname", mode: sIFREG | 0o644, data: "box\n"},
	}, false)
	for _, c := range allCompressions {
		for _, cli := range []bool{false, true} {
			for _, in := range []struct {
				kind string
				data []byte
			}{{"tar", tarData}, {"cpio", cpioData}} {
				name := fmt.Sprintf("%v-%s-cli%v", c, in.kind, cli)
				t.Run(name, func(t *testing.T) {
					img, err := s.Import(bytes.NewReader(compressWith(t, c, in.data, cli)), name, ImportOptions{})
					if err != nil {
						t.Fatal(err)
					}
					if got := readFile(t, filepath.Join(img.Layers[0], "bin/tool")); got != "tool" {
						t.Errorf("bin/tool = %q", got)
					}
					if in.kind == "cpio" {
						a, b := lstat(t, filepath.Join(img.Layers[0], "bin/tool")), lstat(t, filepath.Join(img.Layers[0], "bin/tool2"))
						if a.Ino != b.Ino {
							t.Errorf("cpio hardlink not kept")
						}
					}
				})
			}
		}
	}
	// Same content, whatever the compression: one layer dir per archive kind.
	_, layers := storeContents(t, s)
	if len(layers) != 2 {
		t.Errorf("layers %v, want 2 (one tar, one cpio)", layers)
	}
}

func TestImportConfigOption(t *testing.T) {
	s := newStore(t)
	data := buildTar(t, []tarEntry{{name: "x", data: "x"}})
	img, err := s.Import(bytes.NewReader(data), "cfg", ImportOptions{
		Config:   &ocispec.ImageConfig{Entrypoint: []string{"/x"}, Env: []string{"A=1"}, WorkingDir: "/w", User: "1000"},
		Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"},
		Comment:  "hello",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if c.Architecture != "arm64" || c.Config.WorkingDir != "/w" || c.Config.User != "1000" || c.Config.Entrypoint[0] != "/x" {
		t.Errorf("config %+v", c)
	}
	if strings.Join(c.Config.Env, " ") != DefaultPath+" A=1" {
		t.Errorf("env %v", c.Config.Env)
	}
	if len(c.History) != 1 || c.History[0].Comment != "hello" {
		t.Errorf("history %+v", c.History)
	}
	// The manifest blob is a valid OCI manifest pointing at the config.
	idx, _ := s.readIndex()
	var m ocispec.Manifest
	if err := json.Unmarshal([]byte(readFile(t, s.BlobPath(idx.Images["cfg:latest"].Manifest))), &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.Config.Digest != img.ID || len(m.Layers) != 1 || m.Layers[0].MediaType != ocispec.MediaTypeImageLayer {
		t.Errorf("manifest %+v", m)
	}
}

func TestImportMaliciousFixtures(t *testing.T) {
	dir := filepath.Join(sharedImages(t), "fixtures", "malicious")
	tests := []struct {
		file string
		want string
	}{
		{"path-traversal.tar", `layer entry "../../etc/evil": path escapes the layer`},
		{"absolute-path.tar", `layer entry "/etc/evil": absolute path escapes the layer`},
		{"symlink-escape.tar", `layer entry "link/evil": parent "link" is a symlink`},
		{"hardlink-escape.tar", `layer entry "passwd-link": hardlink target "/etc/passwd" escapes the layer`},
		{"device-node.tar", `layer entry "dev/mem": character device 1:1: device nodes are not allowed`},
		{"truncated.tar", `layer entry "big.bin": archive is truncated`},
		{"gzip-bomb.tar.gz", `layer entry "zeros": 1073741824 bytes exceed the layer size limit`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			for _, p := range []string{"/etc/evil", "/etc/passwd"} {
				if strings.Contains(readFileOrEmpty(p), "evil") {
					t.Fatalf("%s already holds evil content: host polluted before the test", p)
				}
			}
			s := newStore(t)
			s.MaxLayerSize = 64 << 20
			f, err := os.Open(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = s.Import(f, "evil", ImportOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Import: %v\nwant an error containing %q", err, tc.want)
			}
			blobs, layers := storeContents(t, s)
			if len(blobs) != 0 || len(layers) != 0 {
				t.Errorf("rejected import left blobs %v layers %v", blobs, layers)
			}
			if names := indexNames(t, s); len(names) != 0 {
				t.Errorf("rejected import left names %v", names)
			}
			if _, err := s.Get("evil"); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("Get after rejected import: %v", err)
			}
			if _, err := os.Lstat("/etc/evil"); err == nil {
				t.Errorf("/etc/evil exists")
			}
			if strings.Contains(readFileOrEmpty("/etc/passwd"), "evil") {
				t.Errorf("/etc/passwd was written")
			}
		})
	}
}

func readFileOrEmpty(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}

// The stream itself is bounded, not just file sizes: headers count too.
func TestImportStreamLimit(t *testing.T) {
	s := newStore(t)
	var entries []tarEntry
	for i := 0; i < 200; i++ {
		entries = append(entries, tarEntry{name: fmt.Sprintf("f%03d", i)})
	}
	s.MaxLayerSize = 64 << 10
	_, err := s.Import(bytes.NewReader(buildTar(t, entries)), "many", ImportOptions{})
	if !errors.Is(err, errLayerTooBig) || !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Import: %v, want errLayerTooBig", err)
	}
	if blobs, layers := storeContents(t, s); len(blobs)+len(layers) != 0 {
		t.Errorf("left %v %v", blobs, layers)
	}
}

func TestBuiltinBusybox(t *testing.T) {
	s := newStore(t)
	if _, err := os.Stat(s.BusyboxPath); err != nil {
		t.Skipf("needs %s (apt-get install busybox-static): %v", s.BusyboxPath, err)
	}
	img, err := s.Get("BusyBox")
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != BusyboxName || strings.Join(img.Config.Config.Cmd, " ") != "sh" || !hasEnv(img.Config.Config.Env, "PATH") {
		t.Errorf("image %s config %+v", img.Name, img.Config.Config)
	}
	l := img.Layers[0]
	if st := lstat(t, filepath.Join(l, "bin/busybox")); st.Mode&0o7777 != 0o755 || st.Uid != 0 {
		t.Errorf("bin/busybox mode %o uid %d", st.Mode&0o7777, st.Uid)
	}
	for _, applet := range []string{"bin/sh", "bin/ls", "usr/bin/env"} {
		if target, err := os.Readlink(filepath.Join(l, applet)); err != nil || target != "/bin/busybox" {
			t.Errorf("%s -> %q (%v)", applet, target, err)
		}
	}
	if !strings.Contains(readFile(t, filepath.Join(l, "etc/passwd")), "user:x:1000:1000::/home/user:/bin/sh") {
		t.Errorf("etc/passwd lacks the user account")
	}
	if st := lstat(t, filepath.Join(l, "tmp")); st.Mode&0o7777 != 0o1777 {
		t.Errorf("tmp mode %o", st.Mode&0o7777)
	}
	if st := lstat(t, filepath.Join(l, "home/user")); st.Uid != 1000 {
		t.Errorf("home/user uid %d", st.Uid)
	}
	again, err := s.Get("busybox:latest")
	if err != nil || again.ID != img.ID {
		t.Fatalf("second Get: %v %v", again, err)
	}
	if _, layers := storeContents(t, s); len(layers) != 1 {
		t.Errorf("layers %v", layers)
	}
	// Removing it is allowed; the next Get makes it again, identically.
	if err := s.Remove("busybox"); err != nil {
		t.Fatal(err)
	}
	if third, err := s.Get("busybox"); err != nil || third.ID != img.ID {
		t.Fatalf("Get after Remove: %v %v", third, err)
	}
}

func TestBuiltinBusyboxMissing(t *testing.T) {
	s := newStore(t)
	s.BusyboxPath = filepath.Join(t.TempDir(), "no-busybox")
	_, err := s.Get("busybox")
	if !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), "install busybox-static (apt-get install busybox-static)") {
		t.Fatalf("Get: %v", err)
	}
}

// Two stores on one root stand for two cfs processes: flock locks belong
// to open files, so they exclude each other just the same.
func TestBuiltinBusyboxConcurrentFirstUse(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat(DefaultBusyboxPath); err != nil {
		t.Skipf("needs %s (apt-get install busybox-static)", DefaultBusyboxPath)
	}
	root := t.TempDir()
	const n = 4
	ids := make([]digest.Digest, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			s, err := Open(root)
			if err != nil {
				errs[i] = err
				return
			}
			img, err := s.Get("busybox")
			if err != nil {
				errs[i] = err
				return
			}
			ids[i] = img.ID
		}(i)
	}
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("Get %d: %v %v (first %v)", i, ids[i], errs[i], ids[0])
		}
	}
	s, _ := Open(root)
	blobs, layers := storeContents(t, s)
	if len(layers) != 1 || len(blobs) != 3 {
		t.Errorf("after concurrent first use: blobs %v layers %v", blobs, layers)
	}
}

func TestSharedLayerAndRemoveRefcount(t *testing.T) {
	s := newStore(t)
	// Names that are not hex: "a" would also be an ID prefix, which b's
	// ID matches one time in 16.
	data := buildTar(t, []tarEntry{{name: "bin/", typ: tar.TypeDir}, {name: "bin/app", data: "app"}})
	a, err := s.Import(bytes.NewReader(data), "x", ImportOptions{Config: &ocispec.ImageConfig{Cmd: []string{"a"}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Import(bytes.NewReader(data), "y", ImportOptions{Config: &ocispec.ImageConfig{Cmd: []string{"b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID || a.Layers[0] != b.Layers[0] {
		t.Fatalf("want distinct images on one layer: %s %s, %v %v", a.ID, b.ID, a.Layers, b.Layers)
	}
	blobs, layers := storeContents(t, s)
	if len(layers) != 1 || len(blobs) != 5 { // 1 layer + 2 configs + 2 manifests
		t.Fatalf("blobs %v layers %v", blobs, layers)
	}
	if err := s.Remove("X"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("x"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("Get removed: %v", err)
	}
	if _, err := os.Stat(b.Layers[0]); err != nil {
		t.Fatalf("shared layer removed with a: %v", err)
	}
	if blobs, _ := storeContents(t, s); len(blobs) != 3 {
		t.Errorf("after removing a: blobs %v", blobs)
	}
	if err := s.Remove(b.ID.Encoded()[:10]); err != nil {
		t.Fatal(err)
	}
	if blobs, layers := storeContents(t, s); len(blobs)+len(layers) != 0 {
		t.Errorf("after removing both: blobs %v layers %v", blobs, layers)
	}
	if err := s.Remove("y"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("removing twice: %v", err)
	}
}

func TestRemoveSharedIDConflict(t *testing.T) {
	s := newStore(t)
	data := buildTar(t, []tarEntry{{name: "f", data: "f"}})
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	one, err := s.Import(bytes.NewReader(data), "one", ImportOptions{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	two, err := s.Import(bytes.NewReader(data), "two:v2", ImportOptions{Created: created})
	if err != nil {
		t.Fatal(err)
	}
	if one.ID != two.ID {
		t.Fatalf("identical imports got IDs %s %s", one.ID, two.ID)
	}
	if err := s.Remove(one.ID.Encoded()); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatalf("Remove by shared ID: %v", err)
	}
	if err := s.Remove("one"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(two.Layers[0]); err != nil {
		t.Fatalf("layer of two:v2 removed: %v", err)
	}
	if err := s.Remove(one.ID.Encoded()); err != nil {
		t.Fatal(err)
	}
	if blobs, layers := storeContents(t, s); len(blobs)+len(layers) != 0 {
		t.Errorf("left blobs %v layers %v", blobs, layers)
	}
}

func TestReimportKeepsPreviousUntagged(t *testing.T) {
	s := newStore(t)
	old, err := s.Import(bytes.NewReader(buildTar(t, []tarEntry{{name: "v", data: "1"}})), "app", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cur, err := s.Import(bytes.NewReader(buildTar(t, []tarEntry{{name: "v", data: "2"}})), "app", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get("app"); got == nil || got.ID != cur.ID {
		t.Fatalf("app is not the new image")
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[1].Name != "" || list[1].ID != old.ID {
		t.Fatalf("List: %v %v", list, err)
	}
	if _, err := os.Stat(old.Layers[0]); err != nil {
		t.Fatalf("old layer gone while a container may use it: %v", err)
	}
	if err := s.Remove(old.ID.Encoded()[:12]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old.Layers[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("old layer still there: %v", err)
	}
	if got, err := s.Get("app"); err != nil || got.ID != cur.ID {
		t.Fatalf("Get(app) after removing the old one: %v", err)
	}
}

func TestGetErrors(t *testing.T) {
	s := newStore(t)
	if _, err := s.Get("nothing"); !errors.Is(err, errdefs.ErrNotFound) || !strings.Contains(err.Error(), `"nothing"`) {
		t.Errorf("Get(nothing): %v", err)
	}
	if _, err := s.Get("Bad Name!"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Get(bad): %v", err)
	}
	if _, err := s.Import(bytes.NewReader(nil), "x y", ImportOptions{}); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Import bad name: %v", err)
	}
}

func TestIndexByIDAmbiguous(t *testing.T) {
	idx := &indexFile{Images: map[string]*indexEntry{
		"a:latest": {Config: digest.Digest("sha256:abcd" + strings.Repeat("0", 60))},
		"b:latest": {Config: digest.Digest("sha256:abce" + strings.Repeat("0", 60))},
		"c:latest": {Config: digest.Digest("sha256:abcd" + strings.Repeat("0", 60))},
	}}
	if _, _, err := idx.byID("abc"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("ambiguous prefix: %v", err)
	}
	e, name, err := idx.byID("abcd")
	if err != nil || e == nil || name != "a:latest" {
		t.Errorf("byID(abcd) = %v %q %v", e, name, err)
	}
	if e, _, _ := idx.byID("nothex"); e != nil {
		t.Errorf("non-hex matched")
	}
}

func TestStaleTempsRemovedOnImport(t *testing.T) {
	s := newStore(t)
	stale := []string{filepath.Join(s.layerDir(), ".tmp-123"), filepath.Join(s.blobDir(), ".tmp-456")}
	os.MkdirAll(filepath.Join(stale[0], "half"), 0o755)
	os.WriteFile(stale[1], []byte("half"), 0o644)
	if _, err := s.Import(bytes.NewReader(buildTar(t, []tarEntry{{name: "f", data: "f"}})), "x", ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range stale {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived: %v", p, err)
		}
	}
	blobs, layers := storeContents(t, s)
	sort.Strings(blobs)
	for _, n := range append(blobs, layers...) {
		if strings.HasPrefix(n, ".") {
			t.Errorf("temp %s left", n)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	requireRoot(b)
	s, err := Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s.Import(bytes.NewReader(buildTar(b, []tarEntry{{name: "f", data: "f"}})), "bench", ImportOptions{}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Get("bench"); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTag(t *testing.T) {
	s := newStore(t)
	img, err := s.Import(bytes.NewReader(buildTar(t, []tarEntry{{name: "f", data: "1"}})), "orig", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(img.ID.Encoded()[:8], "Copy:V1"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Get("copy:v1"); err != nil || got.ID != img.ID {
		t.Fatalf("Get(copy:v1): %v", err)
	}
	if err := s.Tag("missing", "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Tag(missing): %v", err)
	}
	if err := s.Tag("orig", "bad name"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("Tag to a bad name: %v", err)
	}
	// Moving a name off an image that has no other keeps it untagged.
	other, err := s.Import(bytes.NewReader(buildTar(t, []tarEntry{{name: "f", data: "2"}})), "other", ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("orig", "other"); err != nil {
		t.Fatal(err)
	}
	list, _ := s.List()
	if len(list) != 4 || list[3].Name != "" || list[3].ID != other.ID {
		t.Fatalf("List after moving a name: %+v", list)
	}
}
