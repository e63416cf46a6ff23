package image

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// Archive formats Save writes.
const (
	FormatDockerArchive = "docker-archive"
	FormatOCIArchive    = "oci-archive"
)

// Save writes the images refs (names or IDs) as one archive that
// LoadArchive, `docker load`, `podman load` and skopeo read:
//
//   - oci-archive: a tar of an OCI image layout. Manifests, configs and
//     layer blobs go as stored, so every image keeps its digest; each
//     manifest is annotated with the image's name.
//   - docker-archive: manifest.json with RepoTags, "<config hex>.json" and
//     one uncompressed "<diff ID hex>.tar" per layer (the format of
//     `docker save` and `podman save`).
//
// Entries have fixed times and owners: the same images give the same bytes.
func (s *Store) Save(w io.Writer, refs []string, format string) error {
	if len(refs) == 0 {
		return errdefs.Invalidf("save: no image given")
	}
	var imgs []*Details
	var names []string
	for _, r := range refs {
		d, err := s.Inspect(r)
		if err != nil {
			return err
		}
		imgs = append(imgs, d)
		// A name given is saved under that name; an ID under all names.
		n := ""
		if norm, err := NormalizeName(r); err == nil && contains(d.Names, norm) {
			n = norm
		}
		names = append(names, n)
	}
	aw := &archiveWriter{tw: tar.NewWriter(w), s: s, written: map[string]bool{}}
	var err error
	switch format {
	case FormatOCIArchive, "oci":
		err = aw.oci(imgs, names)
	case FormatDockerArchive, "docker", "":
		err = aw.docker(imgs, names)
	default:
		return errdefs.Invalidf("save: unknown format %q (docker-archive or oci-archive)", format)
	}
	if err != nil {
		return fmt.Errorf("saving %s: %w", strings.Join(refs, ", "), err)
	}
	return aw.tw.Close()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// archiveEpoch is the time of every entry Save writes.
var archiveEpoch = time.Unix(0, 0).UTC()

type archiveWriter struct {
	tw      *tar.Writer
	s       *Store
	written map[string]bool
}

func (a *archiveWriter) header(name string, size int64) error {
	return a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: archiveEpoch, Format: tar.FormatPAX})
}

func (a *archiveWriter) bytes(name string, data []byte) error {
	if a.written[name] {
		return nil
	}
	a.written[name] = true
	if err := a.header(name, int64(len(data))); err != nil {
		return err
	}
	_, err := a.tw.Write(data)
	return err
}

func (a *archiveWriter) dir(name string) error {
	if a.written[name] {
		return nil
	}
	a.written[name] = true
	return a.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: archiveEpoch, Format: tar.FormatPAX})
}

// blob copies a stored blob into the archive under name.
func (a *archiveWriter) blob(name string, d digest.Digest) error {
	if a.written[name] {
		return nil
	}
	a.written[name] = true
	f, err := os.Open(a.s.BlobPath(d))
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := a.header(name, st.Size()); err != nil {
		return err
	}
	n, err := io.Copy(a.tw, f)
	if err == nil && n != st.Size() {
		err = fmt.Errorf("blob %s changed while being saved", d)
	}
	return err
}

func (a *archiveWriter) oci(imgs []*Details, names []string) error {
	if err := a.bytes(ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	index := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	if err := a.dir("blobs/"); err != nil {
		return err
	}
	if err := a.dir("blobs/sha256/"); err != nil {
		return err
	}
	for i, d := range imgs {
		for _, l := range d.Layers {
			if err := a.blob("blobs/sha256/"+l.Digest.Encoded(), l.Digest); err != nil {
				return err
			}
		}
		if err := a.bytes("blobs/sha256/"+d.ID.Encoded(), d.ConfigData); err != nil {
			return err
		}
		if err := a.bytes("blobs/sha256/"+d.Manifest.Encoded(), d.ManifestData); err != nil {
			return err
		}
		desc := ocispec.Descriptor{MediaType: d.ManifestMediaType, Digest: d.Manifest, Size: int64(len(d.ManifestData)),
			Platform: &ocispec.Platform{OS: d.Config.OS, Architecture: d.Config.Architecture, Variant: d.Config.Variant}}
		tags := d.Names
		if names[i] != "" {
			tags = []string{names[i]}
		}
		if len(tags) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range tags {
			dd := desc
			// Full names, as podman and containerd write them.
			dd.Annotations = map[string]string{ocispec.AnnotationRefName: n, "io.containerd.image.name": n}
			index.Manifests = append(index.Manifests, dd)
		}
	}
	data, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return a.bytes("index.json", data)
}

func (a *archiveWriter) docker(imgs []*Details, names []string) error {
	type entry struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	var manifest []entry
	for i, d := range imgs {
		e := entry{Config: d.ID.Encoded() + ".json", RepoTags: d.Names}
		if names[i] != "" {
			e.RepoTags = []string{names[i]}
		}
		if e.RepoTags == nil {
			e.RepoTags = []string{}
		}
		for _, l := range d.Layers {
			name := l.DiffID.Encoded() + ".tar"
			if err := a.layerTar(name, l); err != nil {
				return err
			}
			e.Layers = append(e.Layers, name)
		}
		if err := a.bytes(e.Config, d.ConfigData); err != nil {
			return err
		}
		manifest = append(manifest, e)
	}
	data, err := json.Marshal(manifest)
	if err != nil {
		return err
	}
	return a.bytes("manifest.json", data)
}

// layerTar writes a layer uncompressed, as docker-archive readers expect:
// a stored tar as it is, a compressed one decompressed through a temp
// file (a tar entry needs its size first).
func (a *archiveWriter) layerTar(name string, l LayerInfo) error {
	if a.written[name] {
		return nil
	}
	if l.Digest == l.DiffID {
		return a.blob(name, l.Digest)
	}
	a.written[name] = true
	f, err := os.Open(a.s.BlobPath(l.Digest))
	if err != nil {
		return fmt.Errorf("blob %s: %w", l.Digest, err)
	}
	defer f.Close()
	br, _, _, release, err := openStream(f, 1<<62)
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer release()
	tmp, err := os.CreateTemp(a.s.root, ".tmp-save-")
	if err != nil {
		return err
	}
	os.Remove(tmp.Name()) // unnamed: gone when closed
	defer tmp.Close()
	hw := newHashWriter(tmp)
	if _, err := io.Copy(hw, br); err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	if err := hw.w.Flush(); err != nil {
		return err
	}
	if hw.digest() != l.DiffID {
		return errdefs.Invalidf("layer %s decompresses to %s, not its diff ID %s", l.Digest, hw.digest(), l.DiffID)
	}
	if err := a.header(name, hw.size); err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = io.CopyN(a.tw, tmp, hw.size)
	return err
}
