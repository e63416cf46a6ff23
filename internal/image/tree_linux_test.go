package image

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// tarEntries reads a tar into name -> header (and content of files).
func tarEntries(t *testing.T, data []byte) (map[string]*tar.Header, map[string]string) {
	t.Helper()
	hdrs, contents := map[string]*tar.Header{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return hdrs, contents
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		if _, dup := hdrs[name]; dup {
			t.Errorf("%s written twice", name)
		}
		hdrs[name] = h
		b, _ := io.ReadAll(tr)
		contents[name] = string(b)
	}
}

// The flattened layered fixture is exactly its expected tree.
func TestWriteFlattenedLayered(t *testing.T) {
	s := newStore(t)
	img := loadFixture(t, s, "layered-oci-layout.tar", "layered:1")
	var srcs []TreeSource
	for _, l := range img.Layers {
		srcs = append(srcs, TreeSource{Dir: l})
	}
	var buf bytes.Buffer
	if err := WriteFlattened(&buf, srcs); err != nil {
		t.Fatal(err)
	}
	hdrs, contents := tarEntries(t, buf.Bytes())
	got := map[string]string{}
	links := map[string][]string{}
	for n, h := range hdrs {
		if h.Typeflag == tar.TypeLink {
			links[h.Linkname] = append(links[h.Linkname], "/"+n)
		}
	}
	for n, h := range hdrs {
		typ, size, sum, link, hl := "", "-", "-", "-", "-"
		data := contents[n]
		switch h.Typeflag {
		case tar.TypeDir:
			typ = "dir"
		case tar.TypeReg, tar.TypeLink:
			typ = "file"
			target := n
			if h.Typeflag == tar.TypeLink {
				target = h.Linkname
				data = contents[h.Linkname]
			}
			d := sha256.Sum256([]byte(data))
			size, sum = fmt.Sprint(len(data)), hex.EncodeToString(d[:])
			if g := links[target]; len(g) > 0 {
				g = append([]string{"/" + target}, g...)
				sort.Strings(g)
				hl = strings.Join(g, ",")
			}
		case tar.TypeSymlink:
			typ, link, size = "symlink", h.Linkname, fmt.Sprint(len(h.Linkname))
		default:
			typ = fmt.Sprintf("type %c", h.Typeflag)
		}
		mode := h.Mode
		if h.Typeflag == tar.TypeLink {
			mode = hdrs[h.Linkname].Mode
		}
		got["/"+n] = strings.Join([]string{typ, fmt.Sprintf("%04o", mode), fmt.Sprint(h.Uid), fmt.Sprint(h.Gid), size, sum, link, hl}, "\t")
	}
	want := expectedTree(t, filepath.Join(sharedImages(t), "fixtures", "layered-expected.txt"))
	for p, w := range want {
		if p == "/" {
			continue
		}
		if got[p] != w {
			t.Errorf("%s:\n got  %s\n want %s", p, got[p], w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %s", p)
		}
	}
}

// makeUpper builds what overlayfs leaves in an upper dir.
func makeUpper(t *testing.T, userxattr bool, shift int) string {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	opq := overlayOpaqueXattr
	if userxattr {
		opq = overlayUserOpaqueXattr
	}
	must(os.MkdirAll(filepath.Join(dir, "data/opq"), 0o755))
	must(os.MkdirAll(filepath.Join(dir, "data/copied-up"), 0o755))
	must(unix.Setxattr(filepath.Join(dir, "data/opq"), opq, []byte("y"), 0))
	// Copied up by a plain mount from a lower dir that has both: in the
	// trusted namespace's view, only an ordinary xattr.
	if !userxattr {
		must(unix.Setxattr(filepath.Join(dir, "data/copied-up"), overlayUserOpaqueXattr, []byte("y"), 0))
	}
	must(unix.Setxattr(filepath.Join(dir, "data/copied-up"), "trusted.overlay.origin", []byte("x"), 0))
	must(unix.Mknod(filepath.Join(dir, "data/gone"), unix.S_IFCHR, 0))
	must(os.WriteFile(filepath.Join(dir, "data/opq/new"), []byte("new"), 0o755))
	must(os.Link(filepath.Join(dir, "data/opq/new"), filepath.Join(dir, "data/opq/new-link")))
	must(os.Symlink("../x", filepath.Join(dir, "data/sym")))
	must(unix.Mkfifo(filepath.Join(dir, "data/fifo"), 0o600))
	must(os.WriteFile(filepath.Join(dir, "data/user"), []byte("u"), 0o640))
	must(unix.Setxattr(filepath.Join(dir, "data/user"), "user.keep", []byte("me"), 0))
	must(os.MkdirAll(filepath.Join(dir, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(dir, "etc/hosts"), nil, 0o644))
	must(os.WriteFile(filepath.Join(dir, "etc/resolv.conf"), []byte("real content"), 0o644))
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		uid := shift
		if strings.HasSuffix(p, "/user") {
			uid = shift + 1000
		}
		return os.Lchown(p, uid, shift)
	})
	must(unix.Chmod(filepath.Join(dir, "data/opq/new"), 0o4755)) // chown cleared it
	return dir
}

func TestWriteLayerDiff(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		name      string
		userxattr bool
		shift     int
	}{{"plain", false, 0}, {"userxattr remapped", true, 100000}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := makeUpper(t, tc.userxattr, tc.shift)
			var buf bytes.Buffer
			src := TreeSource{Dir: dir, IDShift: tc.shift, UserXattr: tc.userxattr, MountPoints: []string{"etc/hosts", "etc/resolv.conf"}}
			if err := WriteLayerDiff(&buf, src); err != nil {
				t.Fatal(err)
			}
			hdrs, contents := tarEntries(t, buf.Bytes())
			var names []string
			for n := range hdrs {
				names = append(names, n)
			}
			sort.Strings(names)
			want := "data data/.wh.gone data/copied-up data/fifo data/opq data/opq/.wh..wh..opq data/opq/new data/opq/new-link data/sym data/user etc etc/resolv.conf"
			if got := strings.Join(names, " "); got != want {
				t.Errorf("entries:\n %s\nwant\n %s", got, want)
			}
			if h := hdrs["data/opq/new"]; h == nil || h.Mode != 0o4755 || contents["data/opq/new"] != "new" || h.Uid != 0 {
				t.Errorf("new: %+v", h)
			}
			if h := hdrs["data/opq/new-link"]; h == nil || h.Typeflag != tar.TypeLink || h.Linkname != "data/opq/new" {
				t.Errorf("hardlink: %+v", h)
			}
			if h := hdrs["data/user"]; h == nil || h.Uid != 1000 || h.Gid != 0 || h.PAXRecords["SCHILY.xattr.user.keep"] != "me" {
				t.Errorf("user file: %+v", h)
			}
			if h := hdrs["data/copied-up"]; h == nil || len(h.PAXRecords) != 0 {
				t.Errorf("overlay xattrs leaked into the layer: %+v", h)
			}
			if h := hdrs["data/sym"]; h == nil || h.Linkname != "../x" {
				t.Errorf("symlink: %+v", h)
			}
			if h := hdrs["data/fifo"]; h == nil || h.Typeflag != tar.TypeFifo {
				t.Errorf("fifo: %+v", h)
			}
			// And back: unpacking the diff gives overlay's markers again.
			out := t.TempDir()
			if _, err := UnpackLayer(out, bytes.NewReader(buf.Bytes()), UnpackOptions{}); err != nil {
				t.Fatal(err)
			}
			if getxattr(filepath.Join(out, "data/opq"), overlayOpaqueXattr) != "y" || getxattr(filepath.Join(out, "data/copied-up"), overlayOpaqueXattr) != "" {
				t.Errorf("opaque markers after a round trip are wrong")
			}
		})
	}
}

// Commit makes a layer of an upper dir on top of an image; its containers
// see the changes, and the image saves and loads with its digest.
func TestCommitSaveLoad(t *testing.T) {
	s := newStore(t)
	base := loadFixture(t, s, "layered-oci-layout.tar", "layered:1")
	upper := t.TempDir()
	os.MkdirAll(filepath.Join(upper, "data/dir"), 0o755)
	unix.Setxattr(filepath.Join(upper, "data/dir"), overlayOpaqueXattr, []byte("y"), 0)
	os.WriteFile(filepath.Join(upper, "data/dir/z"), []byte("z"), 0o644)
	unix.Mknod(filepath.Join(upper, "data/a.txt"), unix.S_IFCHR, 0)
	img, err := s.Commit(CommitOptions{Base: base.ID.String(), Name: "committed:1", Upper: TreeSource{Dir: upper}, Comment: "c", CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 5 || img.Layers[3] != base.Layers[3] || img.Name != "committed:1" {
		t.Fatalf("committed %+v", img)
	}
	flat := flatten(t, img.Layers)
	if _, ok := flat["/data/a.txt"]; ok {
		t.Errorf("deleted file still there")
	}
	if _, ok := flat["/data/dir/two"]; ok {
		t.Errorf("opaque dir shows lower files")
	}
	if n, ok := flat["/data/dir/z"]; !ok || n.size != "1" {
		t.Errorf("new file: %+v", n)
	}
	if h := img.Config.History; len(h) != len(base.Config.History)+1 || h[len(h)-1].Comment != "c" {
		t.Errorf("history %+v", h)
	}
	d, err := s.Inspect("committed:1")
	if err != nil || d.Layers[4].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("inspect: %+v %v", d, err)
	}
	for _, format := range []string{FormatOCIArchive, FormatDockerArchive} {
		var buf bytes.Buffer
		if err := s.Save(&buf, []string{"committed:1", "layered:1"}, format); err != nil {
			t.Fatal(err)
		}
		other := newStore(t)
		f, err := os.CreateTemp(t.TempDir(), "a")
		if err != nil {
			t.Fatal(err)
		}
		f.Write(buf.Bytes())
		f.Seek(0, 0)
		imgs, err := other.LoadArchive(f, LoadOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		if len(imgs) != 2 || imgs[0].ID != img.ID || imgs[1].ID != base.ID || imgs[0].Name != "committed:1" {
			t.Fatalf("%s: loaded %+v", format, imgs)
		}
		if format == FormatOCIArchive && (imgs[0].Manifest != img.Manifest || imgs[1].Manifest != base.Manifest) {
			t.Errorf("oci-archive changed digests")
		}
		if _, layers := storeContents(t, other); len(layers) != 5 {
			t.Errorf("%s: %d layer dirs", format, len(layers))
		}
	}
	if err := s.Save(io.Discard, []string{"nope"}, FormatOCIArchive); err == nil {
		t.Errorf("save of a missing image")
	}
}

func TestUsageAndPrune(t *testing.T) {
	s := newStore(t)
	layered := loadFixture(t, s, "layered-oci-layout.tar", "layered:1")
	upper := t.TempDir()
	os.WriteFile(filepath.Join(upper, "new"), []byte("12345"), 0o644)
	c, err := s.Commit(CommitOptions{Base: layered.ID.String(), Upper: TreeSource{Dir: upper}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "" {
		t.Fatalf("untagged commit named %q", c.Name)
	}
	u, err := s.Usage(nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.Images != 2 || u.Size == 0 || u.Reclaimable != u.Size || len(u.PerImage) != 2 {
		t.Errorf("usage %+v", u)
	}
	for _, iu := range u.PerImage {
		if iu.SharedSize == 0 || iu.Size <= iu.SharedSize && iu.ID == c.ID {
			t.Errorf("image usage %+v", iu)
		}
	}
	// The committed image is in use: only untagged and unused ones go.
	rep, err := s.Prune(map[digest.Digest]bool{c.ID: true}, false)
	if err != nil || len(rep.Deleted) != 0 {
		t.Errorf("prune of in-use: %+v %v", rep, err)
	}
	rep, err = s.Prune(nil, false)
	if err != nil || len(rep.Deleted) != 1 || rep.Deleted[0] != c.ID || rep.Reclaimed <= 0 {
		t.Errorf("prune: %+v %v", rep, err)
	}
	if _, err := s.Get("layered:1"); err != nil {
		t.Errorf("prune removed a tagged image: %v", err)
	}
	rep, err = s.Prune(nil, true)
	if err != nil || len(rep.Untagged) != 1 || len(rep.Deleted) != 1 {
		t.Errorf("prune -a: %+v %v", rep, err)
	}
	if blobs, layers := storeContents(t, s); len(blobs)+len(layers) != 0 {
		t.Errorf("left blobs %v layers %v", blobs, layers)
	}
}
