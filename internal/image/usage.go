package image

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// layerSize returns the bytes of file data in the stored layer dir of
// chain: recorded in the index when known, else counted.
func (s *Store) layerSize(chain digest.Digest) int64 {
	if idx, err := s.readIndex(); err == nil {
		if n, ok := idx.layerSize(chain); ok {
			return n
		}
	}
	return dirSize(s.LayerPath(chain))
}

func (idx *indexFile) layerSize(chain digest.Digest) (int64, bool) {
	for _, e := range idx.entries() {
		if len(e.LayerSizes) != len(e.ChainIDs) {
			continue
		}
		for i, c := range e.ChainIDs {
			if c == chain {
				return e.LayerSizes[i], true
			}
		}
	}
	return 0, false
}

// entries returns every entry, tagged and untagged (several names may
// share one).
func (idx *indexFile) entries() []*indexEntry {
	var out []*indexEntry
	seen := map[digest.Digest]bool{}
	for _, n := range sortedNames(idx.Images) {
		if e := idx.Images[n]; !seen[e.Manifest] {
			seen[e.Manifest] = true
			out = append(out, e)
		}
	}
	for _, e := range idx.Dangling {
		if !seen[e.Manifest] {
			seen[e.Manifest] = true
			out = append(out, e)
		}
	}
	return out
}

// dirSize sums the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// Details is everything stored about one image: `cfs image inspect`,
// `cfs history`, `cfs save` and `cfs push` read it.
type Details struct {
	*Image
	Names             []string // every name of the image, sorted
	ManifestData      []byte
	ManifestMediaType string
	ConfigData        []byte
	ConfigMediaType   string
	Layers            []LayerInfo // bottom first
}

// LayerInfo is one layer of an image.
type LayerInfo struct {
	Digest    digest.Digest // the blob as stored and pushed
	MediaType string
	BlobSize  int64
	DiffID    digest.Digest
	ChainID   digest.Digest
	Size      int64 // bytes of file data unpacked
	Dir       string
}

// Inspect returns the image ref (a name or ID prefix) with its manifest,
// config and layers.
func (s *Store) Inspect(ref string) (*Details, error) {
	img, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	d := &Details{Image: img}
	for _, n := range sortedNames(idx.Images) {
		if idx.Images[n].Manifest == img.Manifest {
			d.Names = append(d.Names, n)
		}
	}
	var e *indexEntry
	for _, x := range idx.entries() {
		if x.Manifest == img.Manifest {
			e = x
		}
	}
	if e == nil {
		return nil, errdefs.NotFoundf("image %q was removed", ref)
	}
	if d.ManifestData, err = os.ReadFile(s.BlobPath(e.Manifest)); err != nil {
		return nil, err
	}
	if d.ConfigData, err = os.ReadFile(s.BlobPath(e.Config)); err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(d.ManifestData, &m); err != nil {
		return nil, errdefs.Invalidf("image %s: manifest %s: %v", ref, e.Manifest, err)
	}
	d.ManifestMediaType = manifestMediaType(&m)
	d.ConfigMediaType = m.Config.MediaType
	if len(m.Layers) != len(e.ChainIDs) {
		return nil, errdefs.Invalidf("image %s: manifest lists %d layers, the index %d", ref, len(m.Layers), len(e.ChainIDs))
	}
	for i, l := range m.Layers {
		li := LayerInfo{Digest: l.Digest, MediaType: l.MediaType, BlobSize: l.Size, ChainID: e.ChainIDs[i], Dir: s.LayerPath(e.ChainIDs[i])}
		if i < len(img.Config.RootFS.DiffIDs) {
			li.DiffID = img.Config.RootFS.DiffIDs[i]
		}
		if len(e.LayerSizes) == len(e.ChainIDs) {
			li.Size = e.LayerSizes[i]
		} else {
			li.Size = s.layerSize(e.ChainIDs[i])
		}
		d.Layers = append(d.Layers, li)
	}
	return d, nil
}

// manifestMediaType is the manifest's own mediaType, or the one its config
// implies when the field is absent (podman's OCI manifests).
func manifestMediaType(m *ocispec.Manifest) string {
	if m.MediaType != "" {
		return m.MediaType
	}
	if strings.HasPrefix(m.Config.MediaType, "application/vnd.docker.") {
		return "application/vnd.docker.distribution.manifest.v2+json"
	}
	return ocispec.MediaTypeImageManifest
}

// Usage is the disk use of the image store.
type Usage struct {
	Images      int
	Active      int   // images in use (the inUse set)
	Size        int64 // bytes of blobs and unpacked layers, shared ones once
	Reclaimable int64 // bytes only images not in use hold
	PerImage    []ImageUsage
}

// ImageUsage is one image's part of Usage.
type ImageUsage struct {
	ID         digest.Digest
	Names      []string
	Size       int64 // its layers and blobs
	SharedSize int64 // of that, what other images share
	InUse      bool
}

// Usage reports disk use; inUse holds the IDs of images containers use.
func (s *Store) Usage(inUse map[digest.Digest]bool) (*Usage, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	type item struct {
		size  int64
		users map[digest.Digest]bool
	}
	items := map[string]*item{}
	add := func(key string, id digest.Digest, size func() int64) {
		it := items[key]
		if it == nil {
			it = &item{size: size(), users: map[digest.Digest]bool{}}
			items[key] = it
		}
		it.users[id] = true
	}
	byID := map[digest.Digest]*ImageUsage{}
	var order []digest.Digest
	for _, e := range idx.entries() {
		if byID[e.Config] == nil {
			byID[e.Config] = &ImageUsage{ID: e.Config, InUse: inUse[e.Config]}
			order = append(order, e.Config)
		}
		for _, b := range append([]digest.Digest{e.Manifest, e.Config}, e.Layers...) {
			add("blob:"+b.String(), e.Config, func() int64 {
				if st, err := os.Stat(s.BlobPath(b)); err == nil {
					return st.Size()
				}
				return 0
			})
		}
		for i, c := range e.ChainIDs {
			add("layer:"+c.String(), e.Config, func() int64 {
				if len(e.LayerSizes) == len(e.ChainIDs) {
					return e.LayerSizes[i]
				}
				if n, ok := idx.layerSize(c); ok {
					return n
				}
				return dirSize(s.LayerPath(c))
			})
		}
	}
	for _, n := range sortedNames(idx.Images) {
		iu := byID[idx.Images[n].Config]
		iu.Names = append(iu.Names, n)
	}
	u := &Usage{}
	for _, it := range items {
		u.Size += it.size
		used := false
		for id := range it.users {
			byID[id].Size += it.size
			if len(it.users) > 1 {
				byID[id].SharedSize += it.size
			}
			used = used || inUse[id]
		}
		if !used {
			u.Reclaimable += it.size
		}
	}
	for _, id := range order {
		iu := byID[id]
		u.PerImage = append(u.PerImage, *iu)
		if iu.InUse {
			u.Active++
		}
	}
	u.Images = len(order)
	sort.SliceStable(u.PerImage, func(i, j int) bool { return u.PerImage[i].ID < u.PerImage[j].ID })
	return u, nil
}

// PruneReport lists what Prune removed.
type PruneReport struct {
	Untagged  []string        // names removed
	Deleted   []digest.Digest // image IDs removed
	Reclaimed int64
}

// Prune removes untagged images, or with all every image, except those
// whose ID is in inUse. Blobs and layers go when no image is left using
// them; the temp files of crashed imports go too.
func (s *Store) Prune(inUse map[digest.Digest]bool, all bool) (*PruneReport, error) {
	before, err := s.Usage(nil)
	if err != nil {
		return nil, err
	}
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	rep := &PruneReport{}
	removed := map[digest.Digest]bool{}
	if all {
		for _, n := range sortedNames(idx.Images) {
			e := idx.Images[n]
			if inUse[e.Config] {
				continue
			}
			if err := s.Remove(n); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
				return rep, err
			}
			rep.Untagged = append(rep.Untagged, n)
			removed[e.Config] = true
		}
	}
	idx, err = s.readIndex()
	if err != nil {
		return nil, err
	}
	tagged := map[digest.Digest]bool{}
	for _, e := range idx.Images {
		tagged[e.Config] = true
	}
	for _, e := range idx.Dangling {
		// Removing by ID would take a name sharing the ID along.
		if inUse[e.Config] || tagged[e.Config] {
			continue
		}
		if err := s.Remove(e.Config.Encoded()); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			return rep, err
		}
		removed[e.Config] = true
	}
	for id := range removed {
		if still, _ := s.readIndex(); still != nil {
			if e, _, _ := still.byID(id.Encoded()); e != nil {
				continue // another name keeps it
			}
		}
		rep.Deleted = append(rep.Deleted, id)
	}
	sort.Slice(rep.Deleted, func(i, j int) bool { return rep.Deleted[i] < rep.Deleted[j] })
	// Leftovers of crashed imports, when no import runs.
	if ingest, err := s.lockIngest(true); err == nil {
		ingest.Close()
	}
	after, err := s.Usage(nil)
	if err != nil {
		return rep, err
	}
	rep.Reclaimed = before.Size - after.Size
	return rep, nil
}
