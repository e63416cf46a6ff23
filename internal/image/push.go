//go:build !cfs_lean

package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// PushResult describes a push.
type PushResult struct {
	Reference   string
	Digest      digest.Digest // of the manifest, as stored
	Size        int64         // of the manifest
	Uploaded    int           // blobs sent
	Existed     int           // blobs the registry had already
	UploadBytes int64
}

// Push uploads the stored image src to dest ("" means src's own name):
// its blobs as stored (layers several at a time, each skipped when the
// registry has it, retried on failure), then its manifest byte for byte,
// so the pushed image has the digest and ID it has here.
func (s *Store) Push(src, dest string, o RegistryOptions) (*PushResult, error) {
	res, err := s.push(src, dest, o)
	if err != nil {
		if dest == "" {
			dest = src
		}
		return nil, fmt.Errorf("pushing %s: %w", dest, err)
	}
	return res, nil
}

func (s *Store) push(src, dest string, o RegistryOptions) (*PushResult, error) {
	t := o.Tracer
	d, err := s.Inspect(src)
	if err != nil {
		return nil, err
	}
	if dest == "" {
		if d.Name == "" {
			return nil, errdefs.Invalidf("image %s has no name: say where to push it", src)
		}
		dest = d.Name
	}
	ref, err := o.parseReference(dest)
	if err != nil {
		return nil, err
	}
	ropts, err := o.remoteOptions(ref.Context().RegistryStr())
	if err != nil {
		return nil, err
	}
	pusher, err := remote.NewPusher(ropts...)
	if err != nil {
		return nil, err
	}
	ctx := o.ctx()
	res := &PushResult{Reference: ref.String(), Digest: digest.FromBytes(d.ManifestData), Size: int64(len(d.ManifestData))}

	blobs := []*storeBlob{{s: s, digest: d.ID, mediaType: d.ConfigMediaType, size: int64(len(d.ConfigData)), config: true}}
	for _, l := range d.Layers {
		blobs = append(blobs, &storeBlob{s: s, digest: l.Digest, mediaType: l.MediaType, size: l.BlobSize, diffID: l.DiffID})
	}
	for _, b := range blobs {
		if b.mediaType == "" {
			b.mediaType = string(types.OCILayer)
		}
		if !b.config {
			o.progress(ProgressEvent{ID: shortID(b.digest), Status: StatusWaiting, Total: b.size})
		}
	}
	sem := make(chan struct{}, o.jobs())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for _, b := range blobs {
		wg.Add(1)
		go func(b *storeBlob) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			id := shortID(b.digest)
			if !b.config {
				b.report = func(n int64) { o.progress(ProgressEvent{ID: id, Status: StatusPushing, Current: n, Total: b.size}) }
			}
			t.Step("registry", "blob %s (%d bytes)", b.digest, b.size)
			err := pusher.Upload(ctx, ref.Context(), b)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if !b.config {
					o.progress(ProgressEvent{ID: id, Status: StatusFailed, Total: b.size, Err: err})
				}
				errs = append(errs, fmt.Errorf("blob %s: %w", b.digest, classifyRegistryErr(err)))
				return
			}
			st := StatusPushed
			if b.opened {
				res.Uploaded++
				res.UploadBytes += b.size
			} else {
				res.Existed++
				st = StatusLayerExists
			}
			if !b.config {
				o.progress(ProgressEvent{ID: id, Status: st, Current: b.size, Total: b.size})
			}
		}(b)
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	t.Step("registry", "PUT manifest %s (%s)", ref, res.Digest)
	if err := pusher.Put(ctx, ref, rawManifest{d.ManifestData, types.MediaType(d.ManifestMediaType)}); err != nil {
		return nil, fmt.Errorf("manifest: %w", classifyRegistryErr(err))
	}
	return res, nil
}

// rawManifest is a stored manifest as go-containerregistry pushes it; it
// implements remote.Taggable.
type rawManifest struct {
	data []byte
	mt   types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.data, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// storeBlob is a blob of the store as a v1.Layer: only what an upload
// reads (digest, size, media type, the bytes) is implemented.
type storeBlob struct {
	s         *Store
	digest    digest.Digest
	diffID    digest.Digest
	mediaType string
	size      int64
	config    bool
	report    func(int64)

	mu     sync.Mutex
	opened bool
}

func (b *storeBlob) Digest() (v1.Hash, error) { return v1.NewHash(b.digest.String()) }
func (b *storeBlob) DiffID() (v1.Hash, error) {
	if b.diffID == "" {
		return b.Digest()
	}
	return v1.NewHash(b.diffID.String())
}
func (b *storeBlob) Size() (int64, error)                { return b.size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) { return types.MediaType(b.mediaType), nil }

// Compressed opens the blob as stored; an upload calls it once per try.
func (b *storeBlob) Compressed() (io.ReadCloser, error) {
	f, err := os.Open(b.s.BlobPath(b.digest))
	if err != nil {
		return nil, fmt.Errorf("blob %s is missing from the store: %w", b.digest, err)
	}
	b.mu.Lock()
	b.opened = true
	b.mu.Unlock()
	if b.report == nil {
		return f, nil
	}
	return struct {
		io.Reader
		io.Closer
	}{&progressReader{r: f, report: b.report}, f}, nil
}

// Uncompressed is not needed to push a stored blob.
func (b *storeBlob) Uncompressed() (io.ReadCloser, error) {
	return nil, errdefs.Unsupportedf("uncompressed view of blob %s", b.digest)
}

var _ v1.Layer = (*storeBlob)(nil)
