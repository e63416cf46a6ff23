package image

import (
	"bufio"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

// DefaultPath is the PATH an image gets when its config has none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImportOptions tunes Import.
type ImportOptions struct {
	Tracer *trace.Tracer
	// Config is the image's run configuration; nil means Cmd ["/bin/sh"]
	// and Env [DefaultPath]. A given config without PATH gets DefaultPath.
	Config *ocispec.ImageConfig
	// Platform overrides the architecture detected from the tree's ELF
	// binaries (bin/busybox, bin/sh, ...); the host's when none is found.
	Platform *ocispec.Platform
	// Comment is recorded in the image history.
	Comment string
	// Created is the image's creation time; zero means now.
	Created time.Time

	createdBy    string
	keepExisting bool // keep an image already under the name (built-ins)
}

// Import reads a root filesystem archive from r and stores it as the
// one-layer image name. The format is detected from magic bytes, never a
// file name: gzip, xz, zstd, bzip2, lzma-alone or uncompressed, holding a
// tar or a cpio newc archive (converted to tar: every layer blob is a tar).
// A rejected archive leaves nothing behind.
func (s *Store) Import(r io.Reader, name string, opts ImportOptions) (*Image, error) {
	norm, err := NormalizeName(name)
	if err != nil {
		return nil, err
	}
	img, err := s.importLayer(r, norm, opts)
	if err != nil {
		return nil, fmt.Errorf("importing image %s: %w", norm, err)
	}
	return img, nil
}

func (s *Store) importLayer(r io.Reader, name string, opts ImportOptions) (*Image, error) {
	t := opts.Tracer
	ingest, err := s.lockIngest(true)
	if err != nil {
		return nil, err
	}
	defer ingest.Close()

	l, err := s.ingestLayer(r, t)
	if l != nil {
		defer l.cleanup()
	}
	if err != nil {
		return nil, err
	}

	created := opts.Created
	if created.IsZero() {
		created = time.Now().UTC().Truncate(time.Second)
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opts.Platform != nil {
		platform = *opts.Platform
	} else if arch := detectArch(l.dir); arch != "" {
		platform.Architecture = arch
		if arch != runtime.GOARCH {
			t.Step("image", "tree holds %s binaries: platform linux/%s", arch, arch)
		}
	}
	cfg := ocispec.ImageConfig{Cmd: []string{"/bin/sh"}, Env: []string{DefaultPath}}
	if opts.Config != nil {
		cfg = *opts.Config
		if !hasEnv(cfg.Env, "PATH") {
			cfg.Env = append([]string{DefaultPath}, cfg.Env...)
		}
	}
	createdBy := opts.createdBy
	if createdBy == "" {
		createdBy = fmt.Sprintf("cfs import (%s %s)", l.compression, l.archive)
	}
	config := ocispec.Image{
		Created:  &created,
		Platform: platform,
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.digest}},
		History:  []ocispec.History{{Created: &created, CreatedBy: createdBy, Comment: opts.Comment}},
	}
	return s.store(name, config, []*layer{l}, opts)
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// layer is an unpacked layer in temp files, ready to be published.
type layer struct {
	blobTmp     string        // uncompressed tar
	digest      digest.Digest // of the blob = diff ID
	blobSize    int64
	dir         string // unpacked temp dir
	size        int64  // file data bytes
	compression Compression
	archive     Archive
}

// cleanup removes whatever was not published (renamed away).
func (l *layer) cleanup() {
	if l.blobTmp != "" {
		os.Remove(l.blobTmp)
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}

// errLayerTooBig is returned by limitReader past its limit.
var errLayerTooBig = errdefs.Invalidf("layer exceeds the maximum unpacked size")

// limitReader fails, rather than ending quietly, once n bytes were read.
type limitReader struct {
	r   io.Reader
	n   int64
	max int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// One byte more tells a stream of exactly max bytes from a longer one.
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			return 0, fmt.Errorf("%w of %d bytes", errLayerTooBig, l.max)
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// hashWriter feeds the blob file and its digest in one pass.
type hashWriter struct {
	w    *bufio.Writer
	h    hash.Hash
	size int64
}

func (h *hashWriter) Write(p []byte) (int, error) {
	h.h.Write(p)
	h.size += int64(len(p))
	return h.w.Write(p)
}

// ingestLayer streams one archive: decompress (bounded by MaxLayerSize),
// convert cpio to tar, and tee the tar into a blob temp file and its
// digest while unpacking it into a temp layer dir. Nothing is buffered
// whole. The returned layer must be cleaned up, also on error.
func (s *Store) ingestLayer(r io.Reader, t *trace.Tracer) (*layer, error) {
	max := s.MaxLayerSize
	if max <= 0 {
		max = DefaultMaxLayerSize
	}
	br, comp, arch, release, err := openStream(r, max)
	if err != nil {
		return nil, err
	}
	defer release()
	t.Step("image", "input is %v, %v", comp, arch)
	l := &layer{compression: comp, archive: arch}

	var src io.Reader = br
	if arch == CpioNewc {
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			pw.CloseWithError(cpioToTar(br, pw, t))
		}()
		defer func() {
			pr.CloseWithError(errors.New("import ended")) // unblocks the writer
			<-done
		}()
		src = pr
		t.Step("image", "converting cpio newc entries to a tar layer")
	}

	if l.dir, err = os.MkdirTemp(s.layerDir(), ".tmp-"); err != nil {
		return l, err
	}
	if err := os.Chmod(l.dir, 0o755); err != nil {
		return l, err
	}
	f, err := os.CreateTemp(s.blobDir(), ".tmp-")
	if err != nil {
		return l, err
	}
	l.blobTmp = f.Name()
	defer f.Close()
	hw := &hashWriter{w: bufio.NewWriterSize(f, 1<<20), h: sha256.New()}
	tee := io.TeeReader(src, hw)

	t.Step("unpack", "unpacking layer into %s", l.dir)
	start := time.Now()
	stats, err := UnpackLayer(l.dir, tee, UnpackOptions{Tracer: t, MaxSize: max})
	if err != nil {
		return l, err
	}
	// The blob is the whole stream, including what follows the tar's
	// end-of-archive blocks.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return l, fmt.Errorf("reading after the end of the archive: %w", err)
	}
	if err := hw.w.Flush(); err != nil {
		return l, fmt.Errorf("writing layer blob: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		return l, err
	}
	if err := f.Sync(); err != nil {
		return l, fmt.Errorf("writing layer blob: %w", err)
	}
	// One sync of the filesystem instead of one fsync per unpacked file.
	if err := syncFS(l.dir); err != nil {
		return l, err
	}
	l.digest = digest.NewDigest(digest.SHA256, hw.h)
	l.blobSize = hw.size
	l.size = stats.Size
	t.Step("unpack", "layer %s: %d entries, %d bytes of files, %v", l.digest, stats.Entries, stats.Size, time.Since(start).Round(time.Millisecond))
	return l, nil
}

// store writes config and manifest and publishes the image under name.
func (s *Store) store(name string, config ocispec.Image, layers []*layer, opts ImportOptions) (*Image, error) {
	cfgData, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	manifest := ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageConfig,
			Digest:    digest.FromBytes(cfgData),
			Size:      int64(len(cfgData)),
		},
	}
	entry := &indexEntry{Config: manifest.Config.Digest, Created: time.Now().UTC()}
	if config.Created != nil {
		entry.Created = *config.Created
	}
	var diffIDs []digest.Digest
	for _, l := range layers {
		manifest.Layers = append(manifest.Layers, ocispec.Descriptor{
			MediaType: ocispec.MediaTypeImageLayer,
			Digest:    l.digest,
			Size:      l.blobSize,
		})
		entry.Layers = append(entry.Layers, l.digest)
		entry.Size += l.size
		diffIDs = append(diffIDs, l.digest)
	}
	entry.ChainIDs = ChainIDs(diffIDs)
	manData, err := json.Marshal(manifest)
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	entry.Manifest = digest.FromBytes(manData)

	var pubs []publication
	for _, data := range [][]byte{cfgData, manData} {
		tmp, err := writeTempBlob(s.blobDir(), data)
		if err != nil {
			return nil, err
		}
		defer os.Remove(tmp)
		pubs = append(pubs, publication{tmp: tmp, final: s.BlobPath(digest.FromBytes(data))})
	}
	for i, l := range layers {
		pubs = append(pubs,
			publication{tmp: l.blobTmp, final: s.BlobPath(l.digest)},
			publication{tmp: l.dir, final: s.LayerPath(entry.ChainIDs[i]), dir: true})
	}
	existing, err := s.commit(name, entry, pubs, opts.keepExisting, opts.Tracer)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		entry = existing
	}
	return s.resolve(name, entry)
}

// publication is a temp file or dir to rename to its content address.
type publication struct {
	tmp, final string
	dir        bool
}

func writeTempBlob(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, ".tmp-")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("writing blob: %w", err)
	}
	return f.Name(), nil
}

// commit publishes content and points name at entry, under images.lock.
// Content that already exists is kept (it is identical, being content
// addressed) and the temp copy left for the caller to delete. An image
// that loses its name and has no other is kept as dangling: a container
// may still run on its layers. With keepExisting, an image already under
// the name wins and is returned.
func (s *Store) commit(name string, entry *indexEntry, pubs []publication, keepExisting bool, t *trace.Tracer) (*indexEntry, error) {
	lock, err := lockFile(filepath.Join(s.root, "images.lock"))
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	if old := idx.Images[name]; old != nil && keepExisting {
		return old, nil
	}
	var published []publication
	undo := func() {
		for _, p := range published {
			os.RemoveAll(p.final)
		}
	}
	for _, p := range pubs {
		if _, err := os.Lstat(p.final); err == nil {
			continue
		} else if !errors.Is(err, fs.ErrNotExist) {
			undo()
			return nil, err
		}
		if err := os.Rename(p.tmp, p.final); err != nil {
			undo()
			return nil, fmt.Errorf("publishing %s: %w", filepath.Base(p.final), err)
		}
		if p.dir {
			t.Step("image", "layer stored at %s", p.final)
		}
		published = append(published, p)
	}
	if len(published) > 0 {
		for _, d := range []string{s.blobDir(), s.layerDir()} {
			if err := syncDir(d); err != nil {
				undo()
				return nil, err
			}
		}
	}
	old := idx.Images[name]
	idx.Images[name] = entry
	kept := idx.Dangling[:0]
	for _, d := range idx.Dangling {
		if d.Manifest != entry.Manifest {
			kept = append(kept, d)
		}
	}
	idx.Dangling = kept
	if old != nil && old.Manifest != entry.Manifest && !idx.references(old.Manifest) {
		idx.Dangling = append(idx.Dangling, old)
		t.Step("image", "previous %s (%s) kept untagged", name, old.Config.Encoded()[:12])
	}
	if err := s.writeIndex(idx); err != nil {
		undo()
		return nil, err
	}
	t.Step("image", "%s -> %s", name, entry.Manifest)
	return nil, nil
}

func (idx *indexFile) references(manifest digest.Digest) bool {
	for _, e := range idx.Images {
		if e.Manifest == manifest {
			return true
		}
	}
	for _, e := range idx.Dangling {
		if e.Manifest == manifest {
			return true
		}
	}
	return false
}
