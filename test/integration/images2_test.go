package integration

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// tarIndex lists a tar's entries: name -> header.
func tarIndex(t *testing.T, r io.Reader) map[string]*tar.Header {
	t.Helper()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading tar: %v", err)
		}
		out[strings.TrimSuffix(h.Name, "/")] = h
	}
}

// TestSaveLoadTagHistory: every archive format goes out and back in with
// the same image ID; oci-archive also keeps the manifest digest; skopeo
// reads what cfs save writes.
func TestSaveLoadTagHistory(t *testing.T) {
	fx := needShared(t, "fixtures")
	e := newEnv(t)
	if out := e.ok("load", "-i", filepath.Join(fx, "layered-oci-zstd.tar"), "layered:zstd"); out != "Loaded image: layered:zstd\n" {
		t.Errorf("load prints %q", out)
	}
	e.ok("tag", "layered:zstd", "Example.com/Team/App:v2")
	names := imageField(t, e, layeredID, "{{json .RepoTags}}")
	if names != `["example.com/team/app:v2","layered:zstd"]` {
		t.Errorf("RepoTags after tag: %s", names)
	}
	if r := e.cfs("tag", "nope:1", "x:1"); r.code == 0 || !strings.Contains(r.stderr, "not found") {
		t.Errorf("tag of a missing image: %s", r)
	}
	digest := imageField(t, e, "layered:zstd", "{{.Manifest.Digest}}")

	hist := e.ok("history", "layered:zstd")
	lines := strings.Split(strings.TrimSpace(hist), "\n")
	if len(lines) != 12 || !strings.HasPrefix(lines[1], layeredID[7:19]) || !strings.Contains(hist, "WORKDIR /data") || strings.Count(hist, "<missing>") != 10 {
		t.Errorf("history:\n%s", hist)
	}
	if q := e.ok("history", "-q", "--no-trunc", "layered:zstd"); !strings.HasSuffix(q, layeredID+"\n") {
		t.Errorf("history -q: %q", q)
	}

	dir := t.TempDir()
	for _, format := range []string{"oci-archive", "docker-archive"} {
		out := filepath.Join(dir, format+".tar")
		e.ok("save", "--format", format, "-o", out, "layered:zstd")
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		idx := tarIndex(t, f)
		f.Close()
		switch format {
		case "oci-archive":
			for _, n := range []string{"oci-layout", "index.json", "blobs/sha256/" + digest[7:], "blobs/sha256/" + layeredID[7:]} {
				if idx[n] == nil {
					t.Errorf("%s lacks %s", format, n)
				}
			}
		case "docker-archive":
			if idx["manifest.json"] == nil || idx[layeredID[7:]+".json"] == nil {
				t.Errorf("%s: %v", format, idx)
			}
		}
		// Saving twice gives the same bytes.
		again := filepath.Join(dir, "again.tar")
		e.ok("save", "--format", format, "-o", again, "layered:zstd")
		a, _ := os.ReadFile(out)
		b, _ := os.ReadFile(again)
		if string(a) != string(b) {
			t.Errorf("%s: two saves differ", format)
		}
		// Back into a fresh store, and through skopeo.
		e2 := newEnv(t)
		loaded := e2.ok("load", "-i", out)
		if loaded != "Loaded image: layered:zstd\n" {
			t.Errorf("%s: load prints %q", format, loaded)
		}
		if id := imageField(t, e2, "layered:zstd", "{{.Id}}"); id != layeredID {
			t.Errorf("%s: ID %s", format, id)
		}
		if format == "oci-archive" {
			if d := imageField(t, e2, "layered:zstd", "{{.Manifest.Digest}}"); d != digest {
				t.Errorf("oci-archive round trip: digest %s, want %s", d, digest)
			}
		}
		checkLayeredContainer(t, e2, "layered:zstd")
		if _, err := exec.LookPath("skopeo"); err == nil {
			src := format + ":" + out
			if format == "oci-archive" {
				src += ":layered:zstd"
			}
			cmd := exec.Command("skopeo", "inspect", "--config", src)
			if b, err := cmd.Output(); err != nil || !strings.Contains(string(b), `"WorkingDir": "/data"`) && !strings.Contains(string(b), `"WorkingDir":"/data"`) {
				t.Errorf("skopeo inspect %s: %v\n%s", src, err, b)
			}
		}
	}
	// Several images in one archive, and from stdin.
	e.ok("load", "-i", filepath.Join(fx, "busybox-docker-archive.tar"))
	multi := filepath.Join(dir, "multi.tar")
	e.ok("save", "-o", multi, "layered:zstd", "localhost/busybox:1.35")
	e3 := newEnv(t)
	f, _ := os.Open(multi)
	defer f.Close()
	cmd := e3.command("load")
	cmd.Stdin = f
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "layered:zstd") || !strings.Contains(string(out), "localhost/busybox:1.35") {
		t.Errorf("load of two images from stdin: %v %s", err, out)
	}
	// An OCI layout directory.
	layout := filepath.Join(dir, "layout")
	os.MkdirAll(layout, 0o755)
	if b, err := exec.Command("tar", "-xf", filepath.Join(fx, "layered-oci-layout.tar"), "-C", layout).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, b)
	}
	if out := e3.ok("load", "-i", layout, "fromdir:1"); out != "Loaded image: fromdir:1\n" {
		t.Errorf("load of a layout dir: %q", out)
	}
	if r := e3.cfs("save", "-o", filepath.Join(dir, "x.tar"), "--format", "zip", "fromdir:1"); r.code == 0 {
		t.Errorf("save --format zip: %s", r)
	}
	if r := e3.cfs("load", "-i", "/etc/hostname"); r.code == 0 {
		t.Errorf("load of a non-archive: %s", r)
	}
}

// TestCommitExport: a container's changes (new, changed and deleted files,
// a directory replaced, so opaque) become an image whose containers see
// them; export writes the merged tree.
func TestCommitExport(t *testing.T) {
	fx := needShared(t, "fixtures")
	e := newEnv(t)
	e.ok("load", "-i", filepath.Join(fx, "layered-oci-layout.tar"), "layered:1")
	script := `set -e; rm /data/a.txt; echo new > /data/opq/n2; rm -rf /data/dir; mkdir /data/dir; echo z > /data/dir/z; ln /data/dir/z /data/dir/z2; chown 1000:1000 /data/dir/z; mkdir -p /srv/x`
	e.ok("run", "-u", "0", "--name", "c1", "layered:1", script)
	id := strings.TrimSpace(e.ok("commit", "-m", "my change", "-c", `CMD ["echo committed"]`, "-c", "ENV EXTRA=1", "c1", "committed:1"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("commit printed %q", id)
	}
	if out := e.ok("run", "--rm", "committed:1"); out != "committed\n" {
		t.Errorf("committed image's new CMD: %q", out)
	}
	check := `ls /data/a.txt 2>&1; ls /data/dir /data/opq /srv; stat -c '%u:%g %h' /data/dir/z; echo $EXTRA $APP_MODE; id -u; pwd`
	out := e.ok("run", "--rm", "--entrypoint", "/bin/sh", "committed:1", "-c", check)
	want := "ls: /data/a.txt: No such file or directory\n/data/dir:\nz\nz2\n\n/data/opq:\nn2\nnew.txt\n\n/srv:\nx\n1000:1000 2\n1 fixture\n1000\n/data\n"
	if out != want {
		t.Errorf("container of the committed image sees:\n%s\nwant:\n%s", out, want)
	}
	// Five layers, the first four shared with the base image.
	if layers, _ := filepath.Glob(filepath.Join(e.root, "layers", "*")); len(layers) != 5 {
		t.Errorf("%d layer dirs, want 5", len(layers))
	}
	var layers []struct{ Digest, MediaType string }
	json.Unmarshal([]byte(imageField(t, e, "committed:1", "{{json .Layers}}")), &layers)
	if len(layers) != 5 || layers[4].MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
		t.Fatalf("layers %+v", layers)
	}
	f, err := os.Open(filepath.Join(e.root, "blobs", "sha256", strings.TrimPrefix(layers[4].Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	idx := tarIndex(t, zr)
	f.Close()
	for _, n := range []string{"data/.wh.a.txt", "data/dir/.wh..wh..opq", "data/opq/n2", "srv/x"} {
		if idx[n] == nil {
			t.Errorf("the new layer lacks %s: %v", n, idx)
		}
	}
	for _, n := range []string{"data/opq/.wh..wh..opq", "etc/hosts", "etc/resolv.conf", "data/hl-src"} {
		if idx[n] != nil {
			t.Errorf("the new layer has %s", n)
		}
	}
	if h := idx["data/dir/z2"]; h == nil || h.Typeflag != tar.TypeLink {
		t.Errorf("hardlink z2: %+v", h)
	}
	if hist := e.ok("history", "committed:1"); !strings.Contains(strings.Split(hist, "\n")[1], "my change") {
		t.Errorf("history:\n%s", hist)
	}

	// Export: the merged file system.
	r := e.command("export", "c1")
	stdout, _ := r.StdoutPipe()
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	exp := tarIndex(t, stdout)
	if err := r.Wait(); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"bin/busybox", "data/dir/z", "data/opq/new.txt", "data/opq/n2", "data/hl-src", "srv/x"} {
		if exp[n] == nil {
			t.Errorf("export lacks %s", n)
		}
	}
	for _, n := range []string{"data/a.txt", "data/dir/two", "data/opq/old1", "data/dir/one"} {
		if exp[n] != nil {
			t.Errorf("export has %s", n)
		}
	}
	if h := exp["data/suid"]; h == nil || h.Mode != 0o4755 {
		t.Errorf("suid file: %+v", h)
	}
	if h := exp["data/owned-by-1000"]; h == nil || h.Uid != 1000 {
		t.Errorf("owned-by-1000: %+v", h)
	}
	outFile := filepath.Join(t.TempDir(), "c1.tar")
	e.ok("export", "-o", outFile, "c1")
	if st, err := os.Stat(outFile); err != nil || st.Size() < 1<<20 {
		t.Errorf("export -o: %v %v", st, err)
	}

	// The base image stays while the container uses it; prune keeps both.
	if out := e.ok("image", "prune", "-a"); !strings.Contains(out, "untagged: committed:1") || strings.Contains(out, "layered:1") {
		t.Errorf("prune -a with c1 using layered:1:\n%s", out)
	}
	df := e.ok("system", "df")
	if !strings.Contains(df, "Images       1       1") || !strings.Contains(df, "Containers   1") {
		t.Errorf("system df:\n%s", df)
	}
	e.ok("rm", "c1")
	if out := e.ok("image", "prune", "-a"); !strings.Contains(out, "deleted: "+layeredID) {
		t.Errorf("prune -a:\n%s", out)
	}
	blobs, _ := filepath.Glob(filepath.Join(e.root, "blobs", "sha256", "*"))
	layersLeft, _ := filepath.Glob(filepath.Join(e.root, "layers", "*"))
	if len(blobs)+len(layersLeft) != 0 {
		t.Errorf("after prune -a: blobs %v layers %v", blobs, layersLeft)
	}
}

// TestCommitUsernsRemap: files a --userns remap container writes are
// owned by host ids 100000+; the committed layer has the container's ids,
// and the opaque directory it made (user.overlay.opaque, under
// "userxattr") is opaque in the image.
func TestCommitUsernsRemap(t *testing.T) {
	fx := needShared(t, "fixtures")
	e := newEnv(t)
	e.ok("load", "-i", filepath.Join(fx, "layered-oci-layout.tar"), "layered:1")
	r := e.cfs("run", "-u", "0", "--userns", "remap", "--name", "r", "layered:1",
		"rm -rf /data/dir && mkdir /data/dir && echo u > /data/dir/u && chown 1000:1000 /data/dir/u && echo x > /root-file")
	if r.code != 0 {
		t.Skipf("--userns remap does not run here: %s", r)
	}
	e.ok("commit", "r", "remapped:1")
	out := e.ok("run", "--rm", "-u", "0", "--entrypoint", "/bin/sh", "remapped:1", "-c", "ls /data/dir; stat -c '%u:%g' /data/dir/u /root-file")
	if out != "u\n1000:1000\n0:0\n" {
		t.Errorf("committed remap container: %q", out)
	}
}
