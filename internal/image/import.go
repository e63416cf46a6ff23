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

// errDigestMismatch marks content that did not match its digest: possibly
// damaged in transit, so worth a retry.
var errDigestMismatch = errors.New("digest mismatch")

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

	l, err := s.ingestLayer(r, ingestSpec{}, t)
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
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.diffID}},
		History:  []ocispec.History{{Created: &created, CreatedBy: createdBy, Comment: opts.Comment}},
	}
	cfgData, err := json.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encoding config: %w", err)
	}
	var names []string
	if name != "" {
		names = []string{name}
	}
	imgs, err := s.store(names, cfgData, nil, []*layer{l}, opts.keepExisting, t)
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

// layer is a layer ready to be published: unpacked into temp files, or
// already in the store (reused).
type layer struct {
	blobTmp     string        // the blob: the tar, or the compressed bytes as given
	digest      digest.Digest // of the blob
	mediaType   string
	diffID      digest.Digest // of the uncompressed tar
	blobSize    int64
	dir         string // unpacked temp dir
	size        int64  // file data bytes
	compression Compression
	archive     Archive
	reused      bool // blob and layer dir are in the store already
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

// hashWriter digests a stream and, unless w is nil, writes it to a file.
type hashWriter struct {
	w    *bufio.Writer
	h    hash.Hash
	size int64
}

func newHashWriter(f *os.File) *hashWriter {
	hw := &hashWriter{h: sha256.New()}
	if f != nil {
		hw.w = bufio.NewWriterSize(f, 1<<20)
	}
	return hw
}

func (h *hashWriter) Write(p []byte) (int, error) {
	h.h.Write(p)
	h.size += int64(len(p))
	if h.w == nil {
		return len(p), nil
	}
	return h.w.Write(p)
}

func (h *hashWriter) digest() digest.Digest { return digest.NewDigest(digest.SHA256, h.h) }

// ingestSpec says how to store a layer and what to verify.
type ingestSpec struct {
	// keepRaw stores the input as given when it is a tar, gzip tar or
	// zstd tar (the OCI layer media types), so a loaded manifest stays
	// valid; anything else is stored as the decompressed tar.
	keepRaw bool
	// tarOnly rejects cpio input (image layers are tars).
	tarOnly bool
	// digest and diffID, when set, must match the input and its tar.
	digest, diffID digest.Digest
	what           string // names the layer in errors
}

// ingestLayer streams one archive: decompress (bounded by MaxLayerSize),
// convert cpio to tar, and tee the tar into a blob temp file and its
// digest while unpacking it into a temp layer dir. Nothing is buffered
// whole. The returned layer must be cleaned up, also on error.
func (s *Store) ingestLayer(r io.Reader, spec ingestSpec, t *trace.Tracer) (*layer, error) {
	max := s.MaxLayerSize
	if max <= 0 {
		max = DefaultMaxLayerSize
	}
	l := &layer{}
	var raw *hashWriter
	var rawFile *os.File
	if spec.keepRaw || spec.digest != "" {
		if spec.keepRaw {
			f, err := os.CreateTemp(s.blobDir(), ".tmp-")
			if err != nil {
				return l, err
			}
			defer f.Close()
			rawFile, l.blobTmp = f, f.Name()
		}
		raw = newHashWriter(rawFile)
		r = io.TeeReader(r, raw)
	}
	br, comp, arch, release, err := openStream(r, max)
	if err != nil {
		return l, err
	}
	defer release()
	l.compression, l.archive = comp, arch
	t.Step("image", "input is %v, %v", comp, arch)
	if arch != Tar && spec.tarOnly {
		return l, errdefs.Invalidf("%s is a %v archive, not a tar", spec.what, arch)
	}
	keepRaw := spec.keepRaw && arch == Tar
	switch {
	case keepRaw && comp == Uncompressed:
		l.mediaType = ocispec.MediaTypeImageLayer
	case keepRaw && comp == Gzip:
		l.mediaType = ocispec.MediaTypeImageLayerGzip
	case keepRaw && comp == Zstd:
		l.mediaType = ocispec.MediaTypeImageLayerZstd
	default:
		keepRaw = false
		l.mediaType = ocispec.MediaTypeImageLayer
	}
	if spec.keepRaw && !keepRaw {
		// Store the tar instead: stop filling the raw file.
		raw.w = nil
		rawFile.Close()
		os.Remove(l.blobTmp)
		l.blobTmp = ""
	}

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
	var tarFile *os.File
	if !keepRaw {
		if tarFile, err = os.CreateTemp(s.blobDir(), ".tmp-"); err != nil {
			return l, err
		}
		defer tarFile.Close()
		l.blobTmp = tarFile.Name()
	}
	tarHW := newHashWriter(tarFile)
	tee := io.TeeReader(src, tarHW)

	t.Step("unpack", "unpacking layer into %s", l.dir)
	start := time.Now()
	stats, err := UnpackLayer(l.dir, tee, UnpackOptions{Tracer: t, MaxSize: max})
	if err != nil {
		return l, err
	}
	// The blob is the whole stream, including what follows the tar's
	// end-of-archive blocks (and, raw, what follows the compressed data).
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return l, fmt.Errorf("reading after the end of the archive: %w", err)
	}
	if raw != nil {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return l, fmt.Errorf("reading after the end of the archive: %w", err)
		}
	}
	l.diffID = tarHW.digest()
	if spec.diffID != "" && spec.diffID != l.diffID {
		return l, errdefs.Invalidf("%s: content has diff ID %s, but the image config says %s", spec.what, l.diffID, spec.diffID)
	}
	if spec.digest != "" && raw.digest() != spec.digest {
		return l, fmt.Errorf("%w: %w", errDigestMismatch, errdefs.Invalidf("%s: content has digest %s, but the manifest says %s", spec.what, raw.digest(), spec.digest))
	}
	blob, blobFile := tarHW, tarFile
	if keepRaw {
		blob, blobFile = raw, rawFile
	}
	if err := blob.w.Flush(); err != nil {
		return l, fmt.Errorf("writing layer blob: %w", err)
	}
	if err := blobFile.Chmod(0o644); err != nil {
		return l, err
	}
	if err := blobFile.Sync(); err != nil {
		return l, fmt.Errorf("writing layer blob: %w", err)
	}
	// One sync of the filesystem instead of one fsync per unpacked file.
	if err := syncFS(l.dir); err != nil {
		return l, err
	}
	l.digest, l.blobSize, l.size = blob.digest(), blob.size, stats.Size
	t.Step("unpack", "layer %s: %d entries, %d bytes of files, %v", l.diffID, stats.Entries, stats.Size, time.Since(start).Round(time.Millisecond))
	return l, nil
}

// store writes config and manifest (built when manData is nil) and
// publishes the image under names (none: untagged). It returns the
// image under each name, or the untagged image.
func (s *Store) store(names []string, cfgData, manData []byte, layers []*layer, keepExisting bool, t *trace.Tracer) ([]*Image, error) {
	var config ocispec.Image
	if err := json.Unmarshal(cfgData, &config); err != nil {
		return nil, fmt.Errorf("parsing config: %w", err)
	}
	cfgDigest := digest.FromBytes(cfgData)
	if manData == nil {
		manifest := ocispec.Manifest{
			Versioned: specs.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config: ocispec.Descriptor{
				MediaType: ocispec.MediaTypeImageConfig,
				Digest:    cfgDigest,
				Size:      int64(len(cfgData)),
			},
		}
		for _, l := range layers {
			manifest.Layers = append(manifest.Layers, ocispec.Descriptor{MediaType: l.mediaType, Digest: l.digest, Size: l.blobSize})
		}
		var err error
		if manData, err = json.Marshal(manifest); err != nil {
			return nil, fmt.Errorf("encoding manifest: %w", err)
		}
	}
	entry := &indexEntry{Manifest: digest.FromBytes(manData), Config: cfgDigest, Created: time.Now().UTC()}
	if config.Created != nil {
		entry.Created = *config.Created
	}
	var diffIDs []digest.Digest
	for _, l := range layers {
		diffIDs = append(diffIDs, l.diffID)
	}
	entry.ChainIDs = ChainIDs(diffIDs)
	for i, l := range layers {
		size := l.size
		if l.dir == "" {
			// Not unpacked now: the layer dir is stored already.
			size = s.layerSize(entry.ChainIDs[i])
		}
		entry.Layers = append(entry.Layers, l.digest)
		entry.LayerSizes = append(entry.LayerSizes, size)
		entry.Size += size
	}

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
		if l.reused {
			pubs = append(pubs, publication{final: s.BlobPath(l.digest)}, publication{final: s.LayerPath(entry.ChainIDs[i]), dir: true})
			continue
		}
		pubs = append(pubs,
			publication{tmp: l.blobTmp, final: s.BlobPath(l.digest)},
			publication{tmp: l.dir, final: s.LayerPath(entry.ChainIDs[i]), dir: true})
	}
	existing, err := s.commit(names, entry, pubs, keepExisting, t)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		entry = existing
	}
	if len(names) == 0 {
		img, err := s.resolve("", entry)
		if err != nil {
			return nil, err
		}
		return []*Image{img}, nil
	}
	var out []*Image
	for _, n := range names {
		img, err := s.resolve(n, entry)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// publication is a temp file or dir to rename to its content address;
// without tmp, content that must already be there.
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

// commit publishes content and points names at entry (or records it
// untagged when names is empty), under images.lock. Content that already
// exists is kept (it is identical, being content addressed) and the temp
// copy left for the caller to delete. An image that loses its last name
// is kept untagged: a container may still run on its layers. With
// keepExisting (one name), an image already under the name wins and is
// returned.
func (s *Store) commit(names []string, entry *indexEntry, pubs []publication, keepExisting bool, t *trace.Tracer) (*indexEntry, error) {
	lock, err := lockFile(filepath.Join(s.root, "images.lock"))
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	if keepExisting && len(names) == 1 {
		if old := idx.Images[names[0]]; old != nil {
			return old, nil
		}
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
		if p.tmp == "" {
			undo()
			return nil, errdefs.Conflictf("%s was removed while the image was being stored; try again", p.final)
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
	var replaced []*indexEntry
	for _, name := range names {
		if old := idx.Images[name]; old != nil && old.Manifest != entry.Manifest {
			replaced = append(replaced, old)
		}
		idx.Images[name] = entry
	}
	kept := idx.Dangling[:0]
	for _, d := range idx.Dangling {
		if d.Manifest != entry.Manifest {
			kept = append(kept, d)
		}
	}
	idx.Dangling = kept
	if len(names) == 0 && !idx.references(entry.Manifest) {
		idx.Dangling = append(idx.Dangling, entry)
	}
	var superseded []*indexEntry
	for _, old := range replaced {
		if idx.references(old.Manifest) {
			continue
		}
		if old.Config == entry.Config {
			// The same image (config, hence layers) in another encoding:
			// only its manifest and layer blobs can go.
			superseded = append(superseded, old)
			continue
		}
		idx.Dangling = append(idx.Dangling, old)
		t.Step("image", "previous image %s kept untagged", old.Config.Encoded()[:12])
	}
	if err := s.writeIndex(idx); err != nil {
		undo()
		return nil, err
	}
	if len(superseded) > 0 {
		// Layer dirs are the new entry's too, so nothing is trashed.
		for _, p := range s.collect(idx, superseded) {
			os.RemoveAll(p)
		}
	}
	for _, name := range names {
		t.Step("image", "%s -> %s", name, entry.Manifest)
	}
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
