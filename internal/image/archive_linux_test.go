package image

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"
)

// flatNode is one path of a flattened image, in layered-expected.txt terms.
type flatNode struct {
	typ, mode, uid, gid, size, sha, link string
	layer                                int
	ino                                  uint64
}

// flatten merges layer dirs, bottom first, with overlayfs rules: a 0/0
// character device hides the path, trusted.overlay.opaque=y hides what
// lower layers had below the directory.
func flatten(t *testing.T, layers []string) map[string]flatNode {
	t.Helper()
	merged := map[string]flatNode{}
	drop := func(p string, self bool) {
		for k := range merged {
			if (self && k == p) || strings.HasPrefix(k, strings.TrimSuffix(p, "/")+"/") {
				delete(merged, k)
			}
		}
	}
	for li, dir := range layers {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
			var st unix.Stat_t
			if err := unix.Lstat(p, &st); err != nil {
				return err
			}
			n := flatNode{mode: fmt.Sprintf("%04o", st.Mode&0o7777), uid: fmt.Sprint(st.Uid), gid: fmt.Sprint(st.Gid),
				size: "-", sha: "-", link: "-", layer: li, ino: st.Ino}
			switch st.Mode & unix.S_IFMT {
			case unix.S_IFCHR:
				if st.Rdev == 0 {
					drop(rel, true)
					return nil
				}
				n.typ = "char"
			case unix.S_IFDIR:
				n.typ = "dir"
				if old, ok := merged[rel]; ok && old.typ != "dir" {
					drop(rel, true)
				}
				if getxattr(p, overlayOpaqueXattr) == "y" {
					drop(rel, false)
				}
			case unix.S_IFLNK:
				target, _ := os.Readlink(p)
				n.typ, n.link, n.size = "symlink", target, fmt.Sprint(len(target))
				drop(rel, true)
			case unix.S_IFREG:
				data, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				sum := sha256.Sum256(data)
				n.typ, n.size, n.sha = "file", fmt.Sprint(len(data)), hex.EncodeToString(sum[:])
				drop(rel, true)
			default:
				n.typ = "other"
			}
			merged[rel] = n
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return merged
}

// expectedTree reads layered-expected.txt: path -> the other columns.
func expectedTree(t *testing.T, file string) map[string]string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		out[cols[0]] = strings.Join(cols[1:], "\t")
	}
	return out
}

func flatLines(m map[string]flatNode) map[string]string {
	groups := map[[2]uint64][]string{}
	for p, n := range m {
		if n.typ == "file" {
			k := [2]uint64{uint64(n.layer), n.ino}
			groups[k] = append(groups[k], p)
		}
	}
	out := map[string]string{}
	for p, n := range m {
		hl := "-"
		if g := groups[[2]uint64{uint64(n.layer), n.ino}]; n.typ == "file" && len(g) > 1 {
			sort.Strings(g)
			hl = strings.Join(g, ",")
		}
		out[p] = strings.Join([]string{n.typ, n.mode, n.uid, n.gid, n.size, n.sha, n.link, hl}, "\t")
	}
	return out
}

func TestLoadArchiveLayered(t *testing.T) {
	fixtures := filepath.Join(sharedImages(t), "fixtures")
	want := expectedTree(t, filepath.Join(fixtures, "layered-expected.txt"))
	var wantCfg ocispec.ImageConfig
	if err := json.Unmarshal([]byte(readFile(t, filepath.Join(fixtures, "layered-config.json"))), &wantCfg); err != nil {
		t.Fatal(err)
	}
	shared := newStore(t)
	for _, file := range []string{"layered-oci-layout.tar", "layered-oci-zstd.tar", "layered-oci-uncompressed.tar", "layered-docker-archive.tar"} {
		t.Run(file, func(t *testing.T) {
			for _, s := range []*Store{newStore(t), shared} {
				f, err := os.Open(filepath.Join(fixtures, file))
				if err != nil {
					t.Fatal(err)
				}
				imgs, err := s.LoadArchive(f, LoadOptions{Name: "Layered:1"})
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				if len(imgs) != 1 || imgs[0].Name != "layered:1" || len(imgs[0].Layers) != 4 {
					t.Fatalf("loaded %+v", imgs)
				}
				img := imgs[0]
				if img.ID.Encoded() != "27add61bf79233ba2aaa42708330f0abf61834ee889a3c6d2fab8e6056354e19" {
					t.Errorf("image ID %s: the config must be kept byte for byte", img.ID)
				}
				c := img.Config.Config
				if !reflect.DeepEqual(c.Env, wantCfg.Env) || c.WorkingDir != wantCfg.WorkingDir || c.User != wantCfg.User ||
					!reflect.DeepEqual(c.Entrypoint, wantCfg.Entrypoint) || !reflect.DeepEqual(c.Cmd, wantCfg.Cmd) ||
					!reflect.DeepEqual(c.ExposedPorts, wantCfg.ExposedPorts) || !reflect.DeepEqual(c.Labels, wantCfg.Labels) {
					t.Errorf("config %+v\nwant %+v", c, wantCfg)
				}
				got := flatLines(flatten(t, img.Layers))
				for p, w := range want {
					if p == "/" {
						continue // implementation-defined, says the fixture
					}
					if g, ok := got[p]; !ok {
						t.Errorf("missing %s", p)
					} else if g != w {
						t.Errorf("%s:\n got  %s\n want %s", p, g, w)
					}
				}
				for p := range got {
					if _, ok := want[p]; !ok {
						t.Errorf("unexpected %s", p)
					}
				}
			}
		})
	}
	// Four formats of one image: four layer dirs, shared.
	if _, layers := storeContents(t, shared); len(layers) != 4 {
		t.Errorf("shared store has layers %v, want 4", layers)
	}
	if list, err := shared.List(); err != nil || len(list) != 1 {
		t.Errorf("List: %d images, %v", len(list), err)
	}
	// Each load replaced the previous encoding of the same image, whose
	// manifest and compressed blobs went: the docker-archive's config,
	// its manifest and four plain tar layers remain.
	if blobs, _ := storeContents(t, shared); len(blobs) != 6 {
		t.Errorf("shared store has blobs %v, want 6", blobs)
	}
	if err := shared.Remove("layered:1"); err != nil {
		t.Fatal(err)
	}
	if blobs, layers := storeContents(t, shared); len(blobs)+len(layers) != 0 {
		t.Errorf("after Remove: blobs %v layers %v", blobs, layers)
	}
}

func TestLoadArchiveNames(t *testing.T) {
	fixtures := filepath.Join(sharedImages(t), "fixtures")
	s := newStore(t)
	for _, file := range []string{"busybox-oci-archive.tar", "busybox-docker-archive.tar"} {
		f, err := os.Open(filepath.Join(fixtures, file))
		if err != nil {
			t.Fatal(err)
		}
		imgs, err := s.LoadArchive(f, LoadOptions{})
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if len(imgs) != 1 || imgs[0].Name != "localhost/busybox:1.35" {
			t.Fatalf("%s: %+v", file, imgs)
		}
		if _, err := os.Lstat(filepath.Join(imgs[0].Layers[0], "bin/busybox")); err != nil {
			t.Errorf("%s: %v", file, err)
		}
	}
	// A bare ref name ("1") is a tag without a repository: untagged.
	f, err := os.Open(filepath.Join(fixtures, "layered-oci-layout.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := s.LoadArchive(f, LoadOptions{})
	if err != nil || len(imgs) != 1 || imgs[0].Name != "" {
		t.Fatalf("layered without a name: %+v %v", imgs, err)
	}
	if got, err := s.Get(imgs[0].ID.Encoded()[:12]); err != nil || got.ID != imgs[0].ID {
		t.Fatalf("Get by ID: %v", err)
	}
}

// A compressed archive from a pipe is spooled to an unnamed temp file.
func TestLoadArchiveCompressedStream(t *testing.T) {
	fixtures := filepath.Join(sharedImages(t), "fixtures")
	data, err := os.ReadFile(filepath.Join(fixtures, "busybox-docker-archive.tar"))
	if err != nil {
		t.Fatal(err)
	}
	s := newStore(t)
	imgs, err := s.LoadArchive(io.MultiReader(bytes.NewReader(compressWith(t, Zstd, data, false))), LoadOptions{Name: "bb"})
	if err != nil || len(imgs) != 1 || imgs[0].Name != "bb:latest" {
		t.Fatalf("%+v %v", imgs, err)
	}
	ents, _ := os.ReadDir(s.Root())
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			t.Errorf("temp %s left", e.Name())
		}
	}
}

func TestLoadArchiveMalicious(t *testing.T) {
	dir := filepath.Join(sharedImages(t), "fixtures", "malicious")
	tests := []struct{ file, want string }{
		{"path-traversal.docker-archive.tar", `layer entry "../../etc/evil": path escapes the layer`},
		{"absolute-path.docker-archive.tar", `layer entry "/etc/evil": absolute path escapes the layer`},
		{"symlink-escape.docker-archive.tar", `layer entry "link/evil": parent "link" is a symlink`},
		{"hardlink-escape.docker-archive.tar", `layer entry "passwd-link": hardlink target "/etc/passwd" escapes the layer`},
		{"device-node.docker-archive.tar", `layer entry "dev/mem": character device 1:1`},
		{"truncated.docker-archive.tar", `truncated`},
		{"gzip-bomb.docker-archive.tar", `layer entry "zeros": 1073741824 bytes exceed the layer size limit`},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			s := newStore(t)
			s.MaxLayerSize = 64 << 20
			f, err := os.Open(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			_, err = s.LoadArchive(f, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("LoadArchive: %v\nwant an error containing %q", err, tc.want)
			}
			if blobs, layers := storeContents(t, s); len(blobs)+len(layers) != 0 {
				t.Errorf("rejected load left blobs %v layers %v", blobs, layers)
			}
			if list, _ := s.List(); len(list) != 0 {
				t.Errorf("rejected load left images %v", list)
			}
			if _, err := os.Lstat("/etc/evil"); err == nil {
				t.Errorf("/etc/evil exists")
			}
		})
	}
}
