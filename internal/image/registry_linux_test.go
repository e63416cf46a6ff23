//go:build !cfs_lean

package image

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// testRegistry is go-containerregistry's in-memory registry behind a
// handler that adds basic or bearer-token auth, counts blob downloads and
// can break them.
type testRegistry struct {
	*httptest.Server
	host       string
	user, pass string
	bearer     bool
	blobGets   atomic.Int32
	tokens     atomic.Int32
	// breakBlob, when it returns true for a digest, sends half the blob
	// and cuts the connection.
	mu        sync.Mutex
	breakBlob func(d string) bool
	corrupt   map[string]bool
}

const testToken = "t0ken"

func newTestRegistry(t *testing.T, user, pass string, bearer bool) *testRegistry {
	t.Helper()
	tr := &testRegistry{user: user, pass: pass, bearer: bearer, corrupt: map[string]bool{}}
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if tr.user != "" && !tr.authorized(w, r) {
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:") {
			tr.blobGets.Add(1)
			d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			tr.mu.Lock()
			brk := tr.breakBlob != nil && tr.breakBlob(d)
			corrupt := tr.corrupt[d]
			tr.mu.Unlock()
			if brk || corrupt {
				rec := httptest.NewRecorder()
				inner.ServeHTTP(rec, r)
				body := rec.Body.Bytes()
				if corrupt {
					body[len(body)/2] ^= 0xff
					w.Header().Set("Content-Length", fmt.Sprint(len(body)))
					w.WriteHeader(rec.Code)
					w.Write(body)
					return
				}
				w.Header().Set("Content-Length", fmt.Sprint(len(body)))
				w.WriteHeader(rec.Code)
				w.Write(body[:len(body)/2])
				if hj, ok := w.(http.Hijacker); ok {
					w.(http.Flusher).Flush()
					c, _, _ := hj.Hijack()
					c.Close()
				}
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.Close)
	tr.host = strings.TrimPrefix(tr.URL, "http://")
	return tr
}

func (tr *testRegistry) authorized(w http.ResponseWriter, r *http.Request) bool {
	if tr.bearer {
		if r.URL.Path == "/token" {
			u, p, ok := r.BasicAuth()
			if !ok || u != tr.user || p != tr.pass {
				w.WriteHeader(http.StatusUnauthorized)
				return false
			}
			tr.tokens.Add(1)
			json.NewEncoder(w).Encode(map[string]string{"token": testToken})
			return false
		}
		if r.Header.Get("Authorization") == "Bearer "+testToken {
			return true
		}
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, tr.URL))
		w.WriteHeader(http.StatusUnauthorized)
		return false
	}
	if u, p, ok := r.BasicAuth(); ok && u == tr.user && p == tr.pass {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
	w.WriteHeader(http.StatusUnauthorized)
	return false
}

func loadFixture(t *testing.T, s *Store, file, name string) *Image {
	t.Helper()
	f, err := os.Open(filepath.Join(sharedImages(t), "fixtures", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	imgs, err := s.LoadArchive(f, LoadOptions{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return imgs[0]
}

func checkLayeredTree(t *testing.T, img *Image) {
	t.Helper()
	want := expectedTree(t, filepath.Join(sharedImages(t), "fixtures", "layered-expected.txt"))
	got := flatLines(flatten(t, img.Layers))
	for p, w := range want {
		if p == "/" {
			continue
		}
		if g := got[p]; g != w {
			t.Errorf("%s:\n got  %s\n want %s", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("unexpected %s", p)
		}
	}
}

func TestPushPullRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		file   string
		user   string
		bearer bool
	}{
		{"anonymous oci gzip", "layered-oci-layout.tar", "", false},
		{"basic zstd", "layered-oci-zstd.tar", "alice", false},
		{"bearer docker-archive", "layered-docker-archive.tar", "bob", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newTestRegistry(t, tc.user, "s3cret", tc.bearer)
			src := newStore(t)
			img := loadFixture(t, src, tc.file, "layered:1")
			o := RegistryOptions{}
			if tc.user != "" {
				o.AuthFile = filepath.Join(t.TempDir(), "auth.json")
				if _, err := Login(reg.host, tc.user, "wrong", o); err == nil {
					t.Fatalf("login with a wrong password succeeded")
				}
				if host, err := Login(reg.host, tc.user, "s3cret", o); err != nil || host != reg.host {
					t.Fatalf("login: %q %v", host, err)
				}
			}
			ref := reg.host + "/test/layered:1"
			var mu sync.Mutex
			events := map[ProgressStatus]int{}
			o.Progress = func(ev ProgressEvent) {
				mu.Lock()
				events[ev.Status]++
				mu.Unlock()
			}
			pr, err := src.Push("layered:1", ref, o)
			if err != nil {
				t.Fatal(err)
			}
			if pr.Digest != img.Manifest || pr.Uploaded != 5 {
				t.Errorf("push: %+v, want digest %s and 5 blobs", pr, img.Manifest)
			}
			if events[StatusPushed] != 4 {
				t.Errorf("push events %v", events)
			}
			// Again: the registry has every blob.
			if pr, err := src.Push("layered:1", ref, o); err != nil || pr.Existed != 5 || pr.Uploaded != 0 {
				t.Errorf("second push: %+v %v", pr, err)
			}

			dst := newStore(t)
			res, err := dst.Pull(ref, PullOptions{RegistryOptions: o})
			if err != nil {
				t.Fatal(err)
			}
			if res.Manifest != img.Manifest || res.Image.ID != img.ID || res.Downloaded != 4 {
				t.Errorf("pull: %+v, want manifest %s ID %s", res, img.Manifest, img.ID)
			}
			if res.Image.Name != strings.ToLower(ref) {
				t.Errorf("pulled name %q", res.Image.Name)
			}
			checkLayeredTree(t, res.Image)
			if events[StatusPullComplete] != 4 {
				t.Errorf("pull events %v", events)
			}
			// A second pull, under another tag, downloads no layer and not
			// even the config.
			if _, err := src.Push("layered:1", reg.host+"/test/layered:again", o); err != nil {
				t.Fatal(err)
			}
			gets := reg.blobGets.Load()
			res2, err := dst.Pull(reg.host+"/test/layered:again", PullOptions{RegistryOptions: o})
			if err != nil {
				t.Fatal(err)
			}
			if n := reg.blobGets.Load() - gets; n != 0 || res2.Downloaded != 0 || res2.Reused != 4 {
				t.Errorf("second pull fetched %d blobs: %+v", n, res2)
			}
			if res2.Image.Size != res.Image.Size || res.Image.Size == 0 {
				t.Errorf("sizes %d, %d", res.Image.Size, res2.Image.Size)
			}
			if tc.bearer && reg.tokens.Load() == 0 {
				t.Errorf("no token was fetched")
			}
			// Without credentials, an auth registry refuses.
			if tc.user != "" {
				_, err := newStore(t).Pull(ref, PullOptions{})
				if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") && !strings.Contains(err.Error(), "401") {
					t.Errorf("anonymous pull: %v", err)
				}
			}
		})
	}
}

func TestPullRetriesBrokenDownloads(t *testing.T) {
	reg := newTestRegistry(t, "", "", false)
	src := newStore(t)
	img := loadFixture(t, src, "layered-oci-layout.tar", "layered:1")
	ref := reg.host + "/x/layered:1"
	if _, err := src.Push("layered:1", ref, RegistryOptions{}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	broken := map[string]bool{}
	reg.breakBlob = func(d string) bool {
		mu.Lock()
		defer mu.Unlock()
		if d == img.ID.String() || broken[d] {
			return false
		}
		broken[d] = true
		return true // every layer fails once
	}
	var retries atomic.Int32
	dst := newStore(t)
	res, err := dst.Pull(ref, PullOptions{RegistryOptions: RegistryOptions{Progress: func(ev ProgressEvent) {
		if ev.Status == StatusRetrying {
			retries.Add(1)
		}
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if retries.Load() != 4 || res.Image.Manifest != img.Manifest {
		t.Errorf("%d retries, %+v", retries.Load(), res)
	}
	checkLayeredTree(t, res.Image)

	// A blob that never matches its digest fails the pull, which leaves
	// nothing behind.
	reg.breakBlob = nil
	d := loadFixtureDigest(t, src, "layered:1", 2)
	reg.corrupt[d] = true
	bad := newStore(t)
	_, err = bad.Pull(ref, PullOptions{RegistryOptions: RegistryOptions{Retries: 1}})
	if err == nil || !strings.Contains(err.Error(), "layer 2") {
		t.Fatalf("pull of a corrupt blob: %v", err)
	}
	if blobs, layers := storeContents(t, bad); len(blobs)+len(layers) != 0 {
		t.Errorf("failed pull left blobs %v layers %v", blobs, layers)
	}
}

func loadFixtureDigest(t *testing.T, s *Store, ref string, i int) string {
	d, err := s.Inspect(ref)
	if err != nil {
		t.Fatal(err)
	}
	return d.Layers[i].Digest.String()
}

// A manifest list: the platform asked for is pulled.
func TestPullManifestList(t *testing.T) {
	reg := newTestRegistry(t, "", "", false)
	src := newStore(t)
	layered := loadFixture(t, src, "layered-oci-layout.tar", "layered:1")
	bb := loadFixture(t, src, "busybox-oci-archive.tar", "bb:1")
	for _, n := range []string{"layered:1", "bb:1"} {
		if _, err := src.Push(n, reg.host+"/multi:"+strings.TrimSuffix(n, ":1"), RegistryOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	desc := func(img *Image, arch, variant string) ocispec.Descriptor {
		data, _ := os.ReadFile(src.BlobPath(img.Manifest))
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.Manifest, Size: int64(len(data)),
			Platform: &ocispec.Platform{OS: "linux", Architecture: arch, Variant: variant}}
	}
	index := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{desc(bb, "arm64", "v8"), desc(layered, "amd64", "")}}
	index.SchemaVersion = 2
	data, _ := json.Marshal(index)
	req, _ := http.NewRequest(http.MethodPut, reg.URL+"/v2/multi/manifests/list", strings.NewReader(string(data)))
	req.Header.Set("Content-Type", ocispec.MediaTypeImageIndex)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("put index: %v %v", resp, err)
	}
	for _, tc := range []struct {
		platform string
		want     *Image
		warn     bool
	}{{"", layered, false}, {"linux/arm64", bb, true}, {"linux/arm64/v8", bb, true}, {"arm64", bb, true}} {
		dst := newStore(t)
		res, err := dst.Pull(reg.host+"/multi:list", PullOptions{Platform: tc.platform})
		if err != nil {
			t.Fatalf("%q: %v", tc.platform, err)
		}
		if res.Manifest != tc.want.Manifest || res.Index != digest.FromBytes(data) {
			t.Errorf("%q: pulled %s from %s", tc.platform, res.Manifest, res.Index)
		}
		// busybox's config says amd64: a warning, not an error.
		if (len(res.Warnings) > 0) != tc.warn {
			t.Errorf("%q: warnings %v", tc.platform, res.Warnings)
		}
	}
	if _, err := newStore(t).Pull(reg.host+"/multi:list", PullOptions{Platform: "linux/s390x"}); err == nil || !strings.Contains(err.Error(), "no image for linux/s390x") {
		t.Errorf("missing platform: %v", err)
	}
	// By digest: stored untagged.
	res, err := newStore(t).Pull(reg.host+"/multi@"+layered.Manifest.String(), PullOptions{})
	if err != nil || res.Image.Name != "" || res.Image.ID != layered.ID {
		t.Errorf("pull by digest: %+v %v", res, err)
	}
}

// A layer stored from an uncompressed docker-archive is not unpacked
// again when the gzip encoding of the image is pulled: only its blob is
// fetched.
func TestPullBlobOnlyWhenLayerStored(t *testing.T) {
	reg := newTestRegistry(t, "", "", false)
	src := newStore(t)
	loadFixture(t, src, "layered-oci-layout.tar", "layered:1")
	if _, err := src.Push("layered:1", reg.host+"/l:1", RegistryOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newStore(t)
	loadFixture(t, dst, "layered-docker-archive.tar", "other:1")
	var blobOnly atomic.Int32
	res, err := dst.Pull(reg.host+"/l:1", PullOptions{RegistryOptions: RegistryOptions{Progress: func(ev ProgressEvent) {
		if ev.Status == StatusBlobOnly && ev.Current == 0 {
			blobOnly.Add(1)
		}
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if blobOnly.Load() != 4 {
		t.Errorf("%d blob-only downloads, want 4", blobOnly.Load())
	}
	if _, layers := storeContents(t, dst); len(layers) != 4 {
		t.Errorf("layers %v", layers)
	}
	checkLayeredTree(t, res.Image)
	// The pulled image pushes back as it came.
	pr, err := dst.Push(reg.host+"/l:1", reg.host+"/l:2", RegistryOptions{})
	if err != nil || pr.Digest != res.Manifest {
		t.Errorf("push back: %+v %v", pr, err)
	}
}

func TestAuthFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "auth.json")
	if err := SetAuth(p, "https://Reg.Example:5000/v2/", "u", "p:w"); err != nil {
		t.Fatal(err)
	}
	if err := SetAuth(p, "index.docker.io", "hub", "x"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("auth file mode: %v %v", st, err)
	}
	data, _ := os.ReadFile(p)
	want := base64.StdEncoding.EncodeToString([]byte("u:p:w"))
	if !strings.Contains(string(data), `"reg.example:5000"`) || !strings.Contains(string(data), want) || !strings.Contains(string(data), `"docker.io"`) {
		t.Errorf("auth file:\n%s", data)
	}
	cfg, err := lookupAuth(p, "reg.example:5000")
	if err != nil || cfg == nil || cfg.Username != "u" || cfg.Password != "p:w" {
		t.Errorf("lookup: %+v %v", cfg, err)
	}
	if cfg, _ := lookupAuth(p, "index.docker.io"); cfg == nil || cfg.Username != "hub" {
		t.Errorf("docker hub lookup: %+v", cfg)
	}
	if err := RemoveAuth(p, "reg.example:5000", false); err != nil {
		t.Fatal(err)
	}
	if err := RemoveAuth(p, "reg.example:5000", false); err == nil {
		t.Errorf("second logout succeeded")
	}
	if regs, _ := AuthRegistries(p); len(regs) != 1 || regs[0] != "docker.io" {
		t.Errorf("registries %v", regs)
	}
}

func TestParsePlatform(t *testing.T) {
	for in, want := range map[string]string{"": "linux/amd64", "arm64": "linux/arm64", "linux/arm/v7": "linux/arm/v7"} {
		p, err := ParsePlatform(in)
		if err != nil || (in != "" && p.String() != want) {
			t.Errorf("%q: %v %v", in, p, err)
		}
	}
	if _, err := ParsePlatform("linux/"); err == nil {
		t.Errorf("bad platform accepted")
	}
}
