package image

import (
	"archive/tar"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// The layer benchmarks compare unpacking a gzip layer with `tar -xzf` of
// the same file. Set CFS_BENCH_LAYER to a .tar.gz to use your own; the
// default is a tar of $GOROOT/src (thousands of small files, like a
// distribution's base layer), made once per run.
//
//	go test -run XXX -bench 'Layer|TarXzf' -benchtime 5x ./internal/image/

var benchLayer struct {
	once sync.Once
	path string
	size int64
	err  error
}

func benchLayerFile(b *testing.B) string {
	b.Helper()
	if p := os.Getenv("CFS_BENCH_LAYER"); p != "" {
		return p
	}
	benchLayer.once.Do(func() {
		src := filepath.Join(runtime.GOROOT(), "src")
		f, err := os.CreateTemp("", "cfs-bench-layer-*.tar.gz")
		if err != nil {
			benchLayer.err = err
			return
		}
		defer f.Close()
		benchLayer.path = f.Name()
		zw := gzip.NewWriter(f)
		tw := tar.NewWriter(zw)
		benchLayer.err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				link, _ = os.Readlink(p)
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(filepath.Dir(src), p)
			hdr.Name = rel
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				in, err := os.Open(p)
				if err != nil {
					return err
				}
				defer in.Close()
				benchLayer.size += info.Size()
				_, err = io.Copy(tw, in)
				return err
			}
			return nil
		})
		if benchLayer.err == nil {
			benchLayer.err = tw.Close()
		}
		if benchLayer.err == nil {
			benchLayer.err = zw.Close()
		}
	})
	if benchLayer.err != nil {
		b.Fatal(benchLayer.err)
	}
	return benchLayer.path
}

// benchTarget is a fresh, synced directory on the disk the store uses.
func benchTarget(b *testing.B) string {
	b.Helper()
	dir, err := os.MkdirTemp(os.Getenv("CFS_BENCH_DIR"), "cfs-bench-unpack-")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}

func benchRemove(dir string) {
	os.RemoveAll(dir)
	exec.Command("sync").Run()
}

// unpackOnce decompresses and unpacks layer into a fresh dir, as a pull
// does after the download (without the blob copy and digests).
func unpackOnce(b *testing.B, layer, dir string) {
	f, err := os.Open(layer)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	br, _, _, release, err := openStream(f, DefaultMaxLayerSize)
	if err != nil {
		b.Fatal(err)
	}
	defer release()
	if _, err := UnpackLayer(dir, br, UnpackOptions{}); err != nil {
		b.Fatal(err)
	}
}

func tarOnce(b *testing.B, layer, dir string) {
	if out, err := exec.Command("tar", "-xzf", layer, "-C", dir).CombinedOutput(); err != nil {
		b.Fatalf("tar: %v %s", err, out)
	}
}

// BenchmarkUnpackVsTarXzf alternates UnpackLayer and GNU `tar -xzf` (as
// root: owners and modes kept) on the same gzip layer, so both see the
// same machine load, and reports each one's time and the speedup
// (tar's time / ours: >= 1 means at least as fast as tar).
func BenchmarkUnpackVsTarXzf(b *testing.B) {
	requireRoot(b)
	layer := benchLayerFile(b)
	st, _ := os.Stat(layer)
	var ours, theirs time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, run := range []struct {
			f   func(*testing.B, string, string)
			sum *time.Duration
		}{{unpackOnce, &ours}, {tarOnce, &theirs}} {
			dir := benchTarget(b)
			exec.Command("sync").Run()
			start := time.Now()
			run.f(b, layer, dir)
			*run.sum += time.Since(start)
			benchRemove(dir)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(ours.Milliseconds())/n, "cfs-ms/op")
	b.ReportMetric(float64(theirs.Milliseconds())/n, "tar-ms/op")
	b.ReportMetric(float64(st.Size())/ours.Seconds()*n/1e6, "cfs-MB/s")
	b.ReportMetric(theirs.Seconds()/ours.Seconds(), "speedup")
}

// BenchmarkImportLayerGzip: everything an import or pull does with a
// layer: decompress, unpack, keep the blob, two digests, syncfs.
func BenchmarkImportLayerGzip(b *testing.B) {
	requireRoot(b)
	layer := benchLayerFile(b)
	st, _ := os.Stat(layer)
	b.SetBytes(st.Size())
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := benchTarget(b)
		s, err := Open(root)
		if err != nil {
			b.Fatal(err)
		}
		exec.Command("sync").Run()
		f, err := os.Open(layer)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		l, err := s.ingestLayer(f, ingestSpec{keepRaw: true, tarOnly: true}, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		l.cleanup()
		f.Close()
		benchRemove(root)
	}
}
