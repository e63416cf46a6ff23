package image

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

// LoadOptions tunes LoadArchive.
type LoadOptions struct {
	Tracer *trace.Tracer
	// Name names the image when the archive holds exactly one; it
	// replaces the archive's own names.
	Name string
}

// maxMetadata bounds the JSON documents (manifests, indexes, configs)
// read into memory from an archive.
const maxMetadata = 8 << 20

// maxArchiveLinks bounds symlink hops inside an archive.
const maxArchiveLinks = 16

// LoadArchive stores the images of a docker-archive (`docker save`,
// `podman save --format docker-archive`), an oci-archive (a tar of an OCI
// image layout), or either compressed. Layers are verified against the
// manifest digests and the config's diff IDs, unpacked once per chain ID
// (a layer already in the store is not read), and stored as given when
// they are tar, tar+gzip or tar+zstd, so an OCI manifest keeps its digest.
// Images are named by their RepoTags or org.opencontainers.image.ref.name
// annotation when that is a full name (a bare tag like "1" is not), else
// by opts.Name, else left untagged.
func (s *Store) LoadArchive(r io.Reader, opts LoadOptions) ([]*Image, error) {
	t := opts.Tracer
	ingest, err := s.lockIngest(true)
	if err != nil {
		return nil, err
	}
	defer ingest.Close()
	f, cleanup, err := s.seekableArchive(r, t)
	if err != nil {
		return nil, fmt.Errorf("loading image archive: %w", err)
	}
	defer cleanup()
	a, err := indexArchive(f)
	if err != nil {
		return nil, fmt.Errorf("loading image archive: %w", err)
	}
	var imgs []*Image
	switch {
	case a.has("oci-layout") && a.has("index.json"):
		t.Step("image", "archive is an OCI image layout")
		imgs, err = s.loadOCI(a, opts, t)
	case a.has("manifest.json"):
		t.Step("image", "archive is a docker-archive")
		imgs, err = s.loadDocker(a, opts, t)
	default:
		err = errdefs.Invalidf("archive holds neither an OCI layout (oci-layout, index.json) nor a docker-archive manifest.json")
	}
	if err != nil {
		return nil, fmt.Errorf("loading image archive: %w", err)
	}
	return imgs, nil
}

// seekableArchive returns the archive as a file that can be read at any
// offset: r itself when it is an uncompressed regular file, else a temp
// copy of its decompressed content (stdin, a pipe, `docker save | gzip`).
func (s *Store) seekableArchive(r io.Reader, t *trace.Tracer) (*os.File, func(), error) {
	nop := func() {}
	if f, ok := r.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			var head [6]byte
			if n, _ := f.ReadAt(head[:], 0); DetectCompression(head[:n]) == Uncompressed || n < 6 {
				return f, nop, nil
			}
		}
	}
	br, c, _, release, err := openStream(r, 1<<62)
	if err != nil {
		return nil, nil, err
	}
	defer release()
	tmp, err := os.CreateTemp(s.root, ".tmp-load-")
	if err != nil {
		return nil, nil, err
	}
	os.Remove(tmp.Name()) // unnamed: gone when closed, crash or not
	t.Step("image", "spooling the %v archive to a temp file", c)
	if _, err := io.Copy(tmp, br); err != nil {
		tmp.Close()
		return nil, nil, fmt.Errorf("reading archive: %w", err)
	}
	return tmp, func() { tmp.Close() }, nil
}

// archiveEntry locates one member of a tar held in a file.
type archiveEntry struct {
	typ          byte
	link         string
	offset, size int64
}

type archive struct {
	f       *os.File
	entries map[string]archiveEntry
}

// offsetReader counts the bytes tar.Reader consumed and lets it seek past
// member data instead of reading it.
type offsetReader struct {
	f   *os.File
	off int64
}

func (o *offsetReader) Read(p []byte) (int, error) {
	n, err := o.f.ReadAt(p, o.off)
	o.off += int64(n)
	if errors.Is(err, io.EOF) && n > 0 {
		err = nil
	}
	return n, err
}

func (o *offsetReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		o.off += off
	case io.SeekStart:
		o.off = off
	default:
		return 0, errors.New("unsupported seek")
	}
	return o.off, nil
}

// indexArchive lists the members of the tar in f, with data offsets.
func indexArchive(f *os.File) (*archive, error) {
	or := &offsetReader{f: f}
	tr := tar.NewReader(or)
	a := &archive{f: f, entries: map[string]archiveEntry{}}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading archive: %w", err)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "/"))
		a.entries[name] = archiveEntry{typ: hdr.Typeflag, link: hdr.Linkname, offset: or.off, size: hdr.Size}
	}
	return a, nil
}

func (a *archive) has(name string) bool {
	_, err := a.lookup(name)
	return err == nil
}

// lookup resolves name (following symlinks and hardlinks inside the
// archive only) to a regular member.
func (a *archive) lookup(name string) (archiveEntry, error) {
	orig := name
	for i := 0; i < maxArchiveLinks; i++ {
		name = path.Clean(strings.TrimPrefix(name, "/"))
		if name == ".." || strings.HasPrefix(name, "../") {
			return archiveEntry{}, errdefs.Invalidf("archive member %q points outside the archive", orig)
		}
		e, ok := a.entries[name]
		if !ok {
			return archiveEntry{}, errdefs.NotFoundf("archive has no member %q", orig)
		}
		switch e.typ {
		case tar.TypeReg, tar.TypeGNUSparse:
			return e, nil
		case tar.TypeSymlink:
			if path.IsAbs(e.link) {
				name = e.link
			} else {
				name = path.Join(path.Dir(name), e.link)
			}
		case tar.TypeLink:
			name = e.link
		default:
			return archiveEntry{}, errdefs.Invalidf("archive member %q is not a file", orig)
		}
	}
	return archiveEntry{}, errdefs.Invalidf("archive member %q: too many links", orig)
}

func (a *archive) open(name string) (io.Reader, int64, error) {
	e, err := a.lookup(name)
	if err != nil {
		return nil, 0, err
	}
	return io.NewSectionReader(a.f, e.offset, e.size), e.size, nil
}

// readJSON reads a small member, checking its digest when want is set.
func (a *archive) readJSON(name string, want digest.Digest, v any) ([]byte, error) {
	r, size, err := a.open(name)
	if err != nil {
		return nil, err
	}
	if size > maxMetadata {
		return nil, errdefs.Invalidf("archive member %q: %d bytes is too big for metadata", name, size)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading archive member %q: %w", name, err)
	}
	if want != "" {
		if err := want.Validate(); err != nil {
			return nil, errdefs.Invalidf("archive member %q: bad digest %q: %v", name, want, err)
		}
		if got := want.Algorithm().FromBytes(data); got != want {
			return nil, errdefs.Invalidf("archive member %q has digest %s, want %s", name, got, want)
		}
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, errdefs.Invalidf("archive member %q: %v", name, err)
	}
	return data, nil
}

func blobName(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", errdefs.Invalidf("bad digest %q: %v", d, err)
	}
	return path.Join("blobs", d.Algorithm().String(), d.Encoded()), nil
}

// ociImage is one image found in an OCI layout.
type ociImage struct {
	desc ocispec.Descriptor
	ref  string
}

func (s *Store) loadOCI(a *archive, opts LoadOptions, t *trace.Tracer) ([]*Image, error) {
	var index ocispec.Index
	if _, err := a.readJSON("index.json", "", &index); err != nil {
		return nil, err
	}
	var found []ociImage
	if err := a.collectManifests(index, "", &found, 0); err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, errdefs.Invalidf("OCI layout has no image for linux/%s", runtime.GOARCH)
	}
	if opts.Name != "" && len(found) > 1 {
		return nil, errdefs.Invalidf("archive holds %d images: cannot name them all %q", len(found), opts.Name)
	}
	var out []*Image
	for _, img := range found {
		name, err := archiveNames(opts.Name, img.ref)
		if err != nil {
			return nil, err
		}
		mname, err := blobName(img.desc.Digest)
		if err != nil {
			return nil, err
		}
		var m ocispec.Manifest
		manData, err := a.readJSON(mname, img.desc.Digest, &m)
		if err != nil {
			return nil, err
		}
		var layers []layerSource
		for i, l := range m.Layers {
			bn, err := blobName(l.Digest)
			if err != nil {
				return nil, err
			}
			layers = append(layers, layerSource{member: bn, digest: l.Digest, what: fmt.Sprintf("layer %d (%s)", i, l.Digest)})
		}
		cname, err := blobName(m.Config.Digest)
		if err != nil {
			return nil, err
		}
		imgs, err := s.loadImage(a, name, cname, m.Config.Digest, manData, layers, t)
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// collectManifests walks an image index (nested ones too) and keeps the
// manifests for this host: all of them when they carry no platform.
func (a *archive) collectManifests(index ocispec.Index, ref string, out *[]ociImage, depth int) error {
	if depth > 4 {
		return errdefs.Invalidf("OCI image indexes nested too deep")
	}
	for _, d := range index.Manifests {
		r := ref
		if n := d.Annotations[ocispec.AnnotationRefName]; n != "" {
			r = n
		}
		if d.Platform != nil && (d.Platform.OS != "linux" || d.Platform.Architecture != runtime.GOARCH) {
			continue
		}
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex, "application/vnd.docker.distribution.manifest.list.v2+json":
			bn, err := blobName(d.Digest)
			if err != nil {
				return err
			}
			var sub ocispec.Index
			if _, err := a.readJSON(bn, d.Digest, &sub); err != nil {
				return err
			}
			if err := a.collectManifests(sub, r, out, depth+1); err != nil {
				return err
			}
		default:
			*out = append(*out, ociImage{desc: d, ref: r})
		}
	}
	return nil
}

// dockerManifest is one image of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (s *Store) loadDocker(a *archive, opts LoadOptions, t *trace.Tracer) ([]*Image, error) {
	var ms []dockerManifest
	if _, err := a.readJSON("manifest.json", "", &ms); err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, errdefs.Invalidf("docker-archive manifest.json lists no image")
	}
	if opts.Name != "" && len(ms) > 1 {
		return nil, errdefs.Invalidf("archive holds %d images: cannot name them all %q", len(ms), opts.Name)
	}
	var out []*Image
	for _, m := range ms {
		var names []string
		if opts.Name != "" {
			n, err := NormalizeName(opts.Name)
			if err != nil {
				return nil, err
			}
			names = []string{n}
		} else {
			for _, tag := range m.RepoTags {
				n, err := NormalizeName(tag)
				if err != nil {
					return nil, err
				}
				names = append(names, n)
			}
		}
		// The config's name is its digest in every docker-archive writer;
		// check it when it looks like one.
		var want digest.Digest
		if hex, ok := strings.CutSuffix(path.Base(m.Config), ".json"); ok && digest.NewDigestFromEncoded(digest.SHA256, hex).Validate() == nil {
			want = digest.NewDigestFromEncoded(digest.SHA256, hex)
		}
		var layers []layerSource
		for i, l := range m.Layers {
			layers = append(layers, layerSource{member: l, what: fmt.Sprintf("layer %d (%s)", i, l)})
		}
		imgs, err := s.loadImage(a, names, m.Config, want, nil, layers, t)
		if err != nil {
			return nil, err
		}
		out = append(out, imgs...)
	}
	return out, nil
}

// archiveNames picks an image's name: the override when set, else ref when
// it is a full name rather than a bare tag. It returns no name when
// neither applies.
func archiveNames(override, ref string) ([]string, error) {
	if override != "" {
		n, err := NormalizeName(override)
		if err != nil {
			return nil, err
		}
		return []string{n}, nil
	}
	if ref == "" || !strings.ContainsAny(ref, ":/") {
		return nil, nil
	}
	n, err := NormalizeName(ref)
	if err != nil {
		return nil, nil // not a name: a tag or annotation we do not use
	}
	return []string{n}, nil
}

// layerSource is one layer of an archive.
type layerSource struct {
	member string
	digest digest.Digest // from an OCI manifest; "" in a docker-archive
	what   string
}

// loadImage stores one image of an archive: its config (kept byte for
// byte, so the image ID is the archive's), its layers, and manData when
// given (an OCI manifest, valid as long as every layer is kept as given).
func (s *Store) loadImage(a *archive, names []string, cfgMember string, cfgDigest digest.Digest, manData []byte, srcs []layerSource, t *trace.Tracer) ([]*Image, error) {
	var config ocispec.Image
	cfgData, err := a.readJSON(cfgMember, cfgDigest, &config)
	if err != nil {
		return nil, err
	}
	if config.RootFS.Type != "layers" || len(config.RootFS.DiffIDs) != len(srcs) {
		return nil, errdefs.Invalidf("image config %s: rootfs has %d diff IDs (type %q) for %d layers", cfgMember, len(config.RootFS.DiffIDs), config.RootFS.Type, len(srcs))
	}
	if config.OS != "" && config.OS != "linux" {
		return nil, errdefs.Unsupportedf("image config %s: os %q: only linux images run here", cfgMember, config.OS)
	}
	chains := ChainIDs(config.RootFS.DiffIDs)
	var layers []*layer
	defer func() {
		for _, l := range layers {
			if !l.reused {
				l.cleanup()
			}
		}
	}()
	for i, src := range srcs {
		diffID := config.RootFS.DiffIDs[i]
		// A layer whose dir and blob are stored already is not read: its
		// chain ID proves its content and that of everything below.
		blobDigest := src.digest
		if blobDigest == "" {
			blobDigest = diffID // docker-archive layers are usually plain tars
		}
		if existsAll(s.LayerPath(chains[i]), s.BlobPath(blobDigest)) {
			l := &layer{reused: true, digest: blobDigest, diffID: diffID, mediaType: ocispec.MediaTypeImageLayer}
			if st, err := os.Stat(s.BlobPath(blobDigest)); err == nil {
				l.blobSize = st.Size()
			}
			layers = append(layers, l)
			t.Step("image", "%s: already stored as %s", src.what, chains[i].Encoded()[:12])
			continue
		}
		r, _, err := a.open(src.member)
		if err != nil {
			return nil, err
		}
		l, err := s.ingestLayer(r, ingestSpec{keepRaw: true, tarOnly: true, digest: src.digest, diffID: diffID, what: src.what}, t)
		if l != nil {
			layers = append(layers, l)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.what, err)
		}
	}
	// Reused layers' media types are unknown: keep an OCI manifest only
	// when it describes exactly what is stored.
	if manData != nil {
		var m ocispec.Manifest
		if json.Unmarshal(manData, &m) != nil || len(m.Layers) != len(layers) {
			manData = nil
		} else {
			for i, l := range layers {
				if m.Layers[i].Digest != l.digest {
					manData = nil
					break
				}
				if l.reused {
					l.mediaType, l.blobSize = m.Layers[i].MediaType, m.Layers[i].Size
				}
			}
		}
	}
	return s.store(names, cfgData, manData, layers, false, t)
}

func existsAll(paths ...string) bool {
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			return false
		}
	}
	return true
}
