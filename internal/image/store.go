// Package image is the image store of cfs: a sha256 content store of OCI
// blobs, a name index, importers of root filesystem archives, and the
// safe unpacking of layers into shared read-only overlay lowerdirs.
//
// On disk, under the root directory:
//
//	blobs/sha256/<hex>     manifests, configs and layer tars (uncompressed)
//	layers/<chain-id-hex>/ each layer unpacked once, shared by every image
//	images.json            name -> manifest digest, written atomically
//	images.lock            flock guarding images.json and publication
//	ingest.lock            held shared while importing: temp files in use
//
// Everything appears under its final name by a rename done while holding
// images.lock, so a reader without the lock sees either nothing or a
// complete blob, layer or index, and a crash leaves only ".tmp-*" names,
// which the next import removes.
package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// DefaultRoot is where the engine keeps images unless told otherwise.
const DefaultRoot = "/var/lib/cfs"

// DefaultBusyboxPath is the host binary the built-in busybox image is made of.
const DefaultBusyboxPath = "/bin/busybox"

// BusyboxName is the built-in image's normalized name.
const BusyboxName = "busybox:latest"

// Store is an image store rooted at a directory. Its methods are safe for
// concurrent use, also by several processes sharing the root.
type Store struct {
	root string
	// BusyboxPath is the host binary the built-in busybox image is built
	// from on first use.
	BusyboxPath string
	// MaxLayerSize bounds the decompressed size of one imported layer.
	MaxLayerSize int64
}

// Image is a stored image, resolved for running.
type Image struct {
	Name     string        // normalized "name:tag"; "" for an untagged image
	ID       digest.Digest // config digest (like docker's image ID)
	Manifest digest.Digest
	Config   ocispec.Image
	Layers   []string // absolute paths of unpacked layer dirs, BOTTOM first
	Size     int64    // sum of layer sizes (bytes of file data)
	Created  time.Time
}

// indexFile is images.json.
type indexFile struct {
	Version int                    `json:"version"`
	Images  map[string]*indexEntry `json:"images"`
	// Dangling holds images that lost their name to a newer import while
	// a container may still use their layers; remove them by ID.
	Dangling []*indexEntry `json:"dangling,omitempty"`
}

// indexEntry holds everything Get, List and Remove need, so none of them
// reads a manifest.
type indexEntry struct {
	Manifest digest.Digest   `json:"manifest"`
	Config   digest.Digest   `json:"config"`
	Layers   []digest.Digest `json:"layers"`   // layer blobs, bottom first
	ChainIDs []digest.Digest `json:"chainIDs"` // layer dirs, bottom first
	Size     int64           `json:"size"`
	// LayerSizes are the bytes of file data of each layer dir (absent
	// in indexes written before they were recorded).
	LayerSizes []int64   `json:"layerSizes,omitempty"`
	Created    time.Time `json:"created"`
}

const indexVersion = 1

// Open returns the store at root, creating its directories.
func Open(root string) (*Store, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("image store %s: %w", root, err)
	}
	s := &Store{root: abs, BusyboxPath: DefaultBusyboxPath, MaxLayerSize: DefaultMaxLayerSize}
	for _, d := range []string{s.blobDir(), s.layerDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("image store %s: %w", abs, err)
		}
	}
	return s, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

func (s *Store) blobDir() string  { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) layerDir() string { return filepath.Join(s.root, "layers") }
func (s *Store) indexPath() string {
	return filepath.Join(s.root, "images.json")
}

// BlobPath returns where the blob d is (or would be) stored.
func (s *Store) BlobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

// LayerPath returns the unpacked directory of the layer with chain ID c.
func (s *Store) LayerPath(c digest.Digest) string {
	return filepath.Join(s.layerDir(), c.Encoded())
}

// ChainIDs computes the OCI chain IDs of a stack of diff IDs, bottom first:
// ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// readIndex reads images.json without a lock: it is only ever replaced by
// rename, so a reader sees a whole file.
func (s *Store) readIndex() (*indexFile, error) {
	data, err := os.ReadFile(s.indexPath())
	if errors.Is(err, fs.ErrNotExist) {
		return &indexFile{Version: indexVersion, Images: map[string]*indexEntry{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading image index: %w", err)
	}
	var idx indexFile
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, fmt.Errorf("parsing image index %s: %w", s.indexPath(), err)
	}
	if idx.Images == nil {
		idx.Images = map[string]*indexEntry{}
	}
	return &idx, nil
}

// writeIndex replaces images.json atomically. Caller holds images.lock.
func (s *Store) writeIndex(idx *indexFile) error {
	idx.Version = indexVersion
	data, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding image index: %w", err)
	}
	if err := writeFileAtomic(s.indexPath(), data); err != nil {
		return fmt.Errorf("writing image index: %w", err)
	}
	return nil
}

// Get returns the image named ref ("name[:tag]", any case, ":latest" by
// default) or whose ID starts with ref (hex, optionally "sha256:").
// "busybox" is built in: when absent, it is made from the host's busybox.
func (s *Store) Get(ref string) (*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	name, nerr := NormalizeName(ref)
	if nerr == nil {
		if e := idx.Images[name]; e != nil {
			return s.resolve(name, e)
		}
	}
	if e, name, err := idx.byID(ref); err != nil {
		return nil, err
	} else if e != nil {
		return s.resolve(name, e)
	}
	if nerr == nil && name == BusyboxName {
		return s.builtinBusybox(nil)
	}
	if nerr != nil {
		return nil, nerr
	}
	return nil, errdefs.NotFoundf("image %q not found", ref)
}

// byID finds the image whose ID (config digest) starts with ref. It
// returns the entry and its first name ("" when untagged), nil when
// nothing matches, or an ErrInvalid error when the prefix is ambiguous.
func (idx *indexFile) byID(ref string) (*indexEntry, string, error) {
	prefix := strings.TrimPrefix(strings.ToLower(strings.TrimSpace(ref)), "sha256:")
	if !isHexPrefix(prefix) {
		return nil, "", nil
	}
	var found *indexEntry
	foundName := ""
	ids := map[digest.Digest]bool{}
	names := sortedNames(idx.Images)
	for _, n := range names {
		e := idx.Images[n]
		if strings.HasPrefix(e.Config.Encoded(), prefix) {
			if !ids[e.Config] {
				ids[e.Config] = true
				found, foundName = e, n
			}
		}
	}
	for _, e := range idx.Dangling {
		if strings.HasPrefix(e.Config.Encoded(), prefix) && !ids[e.Config] {
			ids[e.Config] = true
			found, foundName = e, ""
		}
	}
	if len(ids) > 1 {
		return nil, "", errdefs.Invalidf("image ID prefix %q is ambiguous: it matches %d images", ref, len(ids))
	}
	return found, foundName, nil
}

func sortedNames(m map[string]*indexEntry) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// resolve turns an index entry into an Image: one small blob read.
func (s *Store) resolve(name string, e *indexEntry) (*Image, error) {
	what := name
	if what == "" {
		what = e.Config.Encoded()[:12]
	}
	data, err := os.ReadFile(s.BlobPath(e.Config))
	if err != nil {
		return nil, fmt.Errorf("image %s: reading config %s: %w", what, e.Config, err)
	}
	img := &Image{Name: name, ID: e.Config, Manifest: e.Manifest, Size: e.Size, Created: e.Created}
	if err := json.Unmarshal(data, &img.Config); err != nil {
		return nil, fmt.Errorf("image %s: parsing config %s: %w", what, e.Config, err)
	}
	if img.Config.Created != nil {
		img.Created = *img.Config.Created
	}
	img.Layers = make([]string, len(e.ChainIDs))
	for i, c := range e.ChainIDs {
		p := s.LayerPath(c)
		// One stat per layer turns a damaged store into a clear error
		// here rather than an obscure overlay mount failure later.
		if _, err := os.Lstat(p); err != nil {
			return nil, fmt.Errorf("image %s: layer %d (%s) is missing; remove and re-import the image: %w", what, i, c, err)
		}
		img.Layers[i] = p
	}
	return img, nil
}

// List returns every image, tagged ones sorted by name, then untagged ones.
func (s *Store) List() ([]*Image, error) {
	idx, err := s.readIndex()
	if err != nil {
		return nil, err
	}
	var out []*Image
	for _, n := range sortedNames(idx.Images) {
		img, err := s.resolve(n, idx.Images[n])
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	for _, e := range idx.Dangling {
		img, err := s.resolve("", e)
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	return out, nil
}

// Remove removes the name ref, or the image whose ID starts with ref, and
// deletes the blobs and layer dirs no other image references. An ID that
// several names share is a conflict: remove the names. Whether a
// container still uses the layers is the caller's question.
func (s *Store) Remove(ref string) error {
	ingest, err := s.lockIngest(false)
	if err != nil {
		return err
	}
	defer ingest.Close()
	lock, err := lockFile(filepath.Join(s.root, "images.lock"))
	if err != nil {
		return err
	}
	var trash []string
	err = func() error {
		defer lock.Close()
		idx, err := s.readIndex()
		if err != nil {
			return err
		}
		var removed []*indexEntry
		if name, nerr := NormalizeName(ref); nerr == nil && idx.Images[name] != nil {
			removed = append(removed, idx.Images[name])
			delete(idx.Images, name)
		} else {
			e, _, err := idx.byID(ref)
			if err != nil {
				return err
			}
			if e == nil {
				if nerr != nil && !isHexPrefix(strings.TrimPrefix(strings.ToLower(ref), "sha256:")) {
					return nerr
				}
				return errdefs.NotFoundf("image %q not found", ref)
			}
			var names []string
			for _, n := range sortedNames(idx.Images) {
				if idx.Images[n].Config == e.Config {
					names = append(names, n)
				}
			}
			if len(names) > 1 {
				return errdefs.Conflictf("image %s is referenced by several names (%s): remove them by name", e.Config.Encoded()[:12], strings.Join(names, ", "))
			}
			for _, n := range names {
				removed = append(removed, idx.Images[n])
				delete(idx.Images, n)
			}
			kept := idx.Dangling[:0]
			for _, d := range idx.Dangling {
				if d.Config == e.Config {
					removed = append(removed, d)
				} else {
					kept = append(kept, d)
				}
			}
			idx.Dangling = kept
		}
		if err := s.writeIndex(idx); err != nil {
			return err
		}
		trash = s.collect(idx, removed)
		return nil
	}()
	// Deleting trees takes time: done after the index lock is released,
	// the layers having been renamed out of the way under it.
	for _, p := range trash {
		os.RemoveAll(p)
	}
	if err != nil {
		return fmt.Errorf("removing image %s: %w", ref, err)
	}
	return nil
}

// collect deletes the blobs of removed entries that idx no longer
// references and renames such layer dirs to temp names, which it returns
// for the caller to delete. Caller holds images.lock.
func (s *Store) collect(idx *indexFile, removed []*indexEntry) []string {
	live := map[digest.Digest]bool{}
	mark := func(e *indexEntry) {
		live[e.Manifest], live[e.Config] = true, true
		for _, d := range e.Layers {
			live[d] = true
		}
		for _, c := range e.ChainIDs {
			live["chain:"+c] = true
		}
	}
	for _, e := range idx.Images {
		mark(e)
	}
	for _, e := range idx.Dangling {
		mark(e)
	}
	var trash []string
	for _, e := range removed {
		for _, d := range append([]digest.Digest{e.Manifest, e.Config}, e.Layers...) {
			if !live[d] {
				os.Remove(s.BlobPath(d))
				live[d] = true // done
			}
		}
		for _, c := range e.ChainIDs {
			if live["chain:"+c] {
				continue
			}
			live["chain:"+c] = true
			tmp, err := os.MkdirTemp(s.layerDir(), ".tmp-rm-")
			if err != nil {
				continue
			}
			dst := filepath.Join(tmp, "layer")
			if err := os.Rename(s.LayerPath(c), dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
				os.Remove(tmp)
				continue
			}
			trash = append(trash, tmp)
		}
	}
	return trash
}

// Tag adds the name newName to the image ref (a name or ID prefix). An
// image that loses newName and has no other name is kept untagged.
func (s *Store) Tag(ref, newName string) error {
	name, err := NormalizeName(newName)
	if err != nil {
		return err
	}
	ingest, err := s.lockIngest(false)
	if err != nil {
		return err
	}
	defer ingest.Close()
	idx, err := s.readIndex()
	if err != nil {
		return err
	}
	var e *indexEntry
	if n, nerr := NormalizeName(ref); nerr == nil {
		e = idx.Images[n]
	}
	if e == nil {
		if e, _, err = idx.byID(ref); err != nil {
			return err
		}
	}
	if e == nil {
		return errdefs.NotFoundf("image %q not found", ref)
	}
	// The content must still be there when the name is written: commit
	// checks these under the lock.
	pubs := []publication{{final: s.BlobPath(e.Manifest)}, {final: s.BlobPath(e.Config)}}
	for _, c := range e.ChainIDs {
		pubs = append(pubs, publication{final: s.LayerPath(c), dir: true})
	}
	if _, err := s.commit([]string{name}, e, pubs, false, nil); err != nil {
		return fmt.Errorf("tagging %s as %s: %w", ref, name, err)
	}
	return nil
}
