//go:build !cfs_lean

package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// PullOptions tunes Pull.
type PullOptions struct {
	RegistryOptions
	// Platform is "os/arch[/variant]" chosen from a manifest list;
	// "" means linux and the host's architecture.
	Platform string
}

// PullResult describes a pull.
type PullResult struct {
	Image    *Image
	Manifest digest.Digest // the platform manifest stored
	Index    digest.Digest // the manifest list it was chosen from, if any
	// Layers fetched, and the bytes they took; layers already stored
	// cost nothing.
	Downloaded      int
	DownloadedBytes int64
	Reused          int
	Warnings        []string
}

// manifestMediaTypes are the manifests Pull can store.
var manifestMediaTypes = map[types.MediaType]bool{
	types.OCIManifestSchema1:    true,
	types.DockerManifestSchema2: true,
}

// Pull fetches ref ("[registry/]name[:tag|@digest]", Docker Hub when no
// registry is given) with the OCI distribution API and stores it under
// ref's name (a digest reference is stored untagged). From a manifest list
// it takes the manifest of o.Platform. The manifest and config are stored
// byte for byte, so the image keeps its digest and ID; layers are
// downloaded in parallel (o.Jobs) with retries, verified against the
// manifest's digests and the config's diff IDs, and unpacked while they
// arrive. A layer whose chain ID is stored already is not downloaded.
func (s *Store) Pull(ref string, o PullOptions) (*PullResult, error) {
	res, err := s.pull(ref, o)
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return res, nil
}

func (s *Store) pull(refStr string, o PullOptions) (*PullResult, error) {
	t := o.Tracer
	want, err := ParsePlatform(o.Platform)
	if err != nil {
		return nil, err
	}
	ref, err := o.parseReference(refStr)
	if err != nil {
		return nil, err
	}
	var names []string
	if _, ok := ref.(name.Tag); ok {
		n, err := NormalizeName(refStr)
		if err != nil {
			return nil, err
		}
		names = []string{n}
	}
	ropts, err := o.remoteOptions(ref.Context().RegistryStr())
	if err != nil {
		return nil, err
	}
	puller, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, err
	}
	ctx := o.ctx()
	res := &PullResult{}

	t.Step("registry", "GET manifest %s", ref)
	desc, err := puller.Get(ctx, ref)
	if err != nil {
		return nil, classifyRegistryErr(err)
	}
	manData, mt := desc.Manifest, desc.MediaType
	if mt.IsIndex() {
		res.Index = digest.FromBytes(manData)
		child, err := pickPlatform(manData, want)
		if err != nil {
			return nil, err
		}
		t.Step("registry", "manifest list %s: %s is %s", res.Index, want, child.Digest)
		d, err := puller.Get(ctx, ref.Context().Digest(child.Digest.String()))
		if err != nil {
			return nil, classifyRegistryErr(err)
		}
		manData, mt = d.Manifest, d.MediaType
	}
	if mt.IsSchema1() {
		return nil, errdefs.Unsupportedf("%s is a Docker schema 1 manifest, which cfs does not pull (push it again with a current client)", ref)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(manData, &m); err != nil {
		return nil, errdefs.Invalidf("manifest of %s: %v", ref, err)
	}
	if mt == "" {
		mt = types.MediaType(m.MediaType)
	}
	if !manifestMediaTypes[mt] && !(mt == "" && m.Config.Digest != "") {
		return nil, errdefs.Unsupportedf("%s: manifest media type %q is not an image", ref, mt)
	}
	res.Manifest = digest.FromBytes(manData)

	cfgData, err := s.fetchConfig(ctx, puller, ref.Context(), m.Config)
	if err != nil {
		return nil, err
	}
	var config ocispec.Image
	if err := json.Unmarshal(cfgData, &config); err != nil {
		return nil, errdefs.Invalidf("config %s: %v", m.Config.Digest, err)
	}
	if config.RootFS.Type != "layers" || len(config.RootFS.DiffIDs) != len(m.Layers) {
		return nil, errdefs.Invalidf("config %s: rootfs has %d diff IDs (type %q) for %d layers", m.Config.Digest, len(config.RootFS.DiffIDs), config.RootFS.Type, len(m.Layers))
	}
	if config.OS != "" && config.OS != "linux" {
		return nil, errdefs.Unsupportedf("%s: os %q: only linux images run here", ref, config.OS)
	}
	if config.Architecture != "" && config.Architecture != want.Architecture {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the image's platform (%s/%s) does not match the requested platform (%s)", config.OS, config.Architecture, want))
	}

	ingest, err := s.lockIngest(true)
	if err != nil {
		return nil, err
	}
	defer ingest.Close()

	layers, err := s.fetchLayers(ctx, puller, ref.Context(), m.Layers, config.RootFS.DiffIDs, &o.RegistryOptions, res)
	defer func() {
		for _, l := range layers {
			if l != nil && !l.reused {
				l.cleanup()
			}
		}
	}()
	if err != nil {
		return nil, err
	}
	imgs, err := s.store(names, cfgData, manData, layers, false, t)
	if err != nil {
		return nil, err
	}
	res.Image = imgs[0]
	return res, nil
}

// pickPlatform returns the manifest of want from a manifest list.
func pickPlatform(data []byte, want v1.Platform) (*ocispec.Descriptor, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(data, &idx); err != nil {
		return nil, errdefs.Invalidf("manifest list: %v", err)
	}
	var have []string
	for i, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		p := v1.Platform{OS: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant, OSVersion: d.Platform.OSVersion}
		have = append(have, p.String())
		if platformMatches(want, p) {
			return &idx.Manifests[i], nil
		}
	}
	return nil, errdefs.NotFoundf("no image for %s in the manifest list (it has: %v)", want, have)
}

// platformMatches compares os, architecture and, when asked for, variant
// (arm64's "v8" being the default).
func platformMatches(want, have v1.Platform) bool {
	if want.OS != have.OS || want.Architecture != have.Architecture {
		return false
	}
	if want.Variant == "" {
		return true
	}
	norm := func(p v1.Platform) string {
		if p.Architecture == "arm64" && p.Variant == "" {
			return "v8"
		}
		return p.Variant
	}
	return norm(want) == norm(have)
}

// fetchConfig returns the config blob: from the store when it is there
// (its name is its digest), else from the registry, verified.
func (s *Store) fetchConfig(ctx context.Context, p *remote.Puller, repo name.Repository, d ocispec.Descriptor) ([]byte, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, errdefs.Invalidf("config digest %q: %v", d.Digest, err)
	}
	if d.Size > maxMetadata {
		return nil, errdefs.Invalidf("config %s: %d bytes is too big", d.Digest, d.Size)
	}
	if data, err := os.ReadFile(s.BlobPath(d.Digest)); err == nil && digest.FromBytes(data) == d.Digest {
		return data, nil
	}
	l, err := p.Layer(ctx, repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, classifyRegistryErr(err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, classifyRegistryErr(err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxMetadata+1))
	if err != nil {
		return nil, fmt.Errorf("fetching config %s: %w", d.Digest, classifyRegistryErr(err))
	}
	if got := digest.FromBytes(data); got != d.Digest {
		return nil, errdefs.Invalidf("config has digest %s, but the manifest says %s", got, d.Digest)
	}
	return data, nil
}

// fetchLayers makes every layer of a manifest available: stored already
// (reused), or downloaded, verified and unpacked, several at a time. The
// returned layers must be cleaned up, also on error.
func (s *Store) fetchLayers(ctx context.Context, p *remote.Puller, repo name.Repository, descs []ocispec.Descriptor, diffIDs []digest.Digest, o *RegistryOptions, res *PullResult) ([]*layer, error) {
	t := o.Tracer
	chains := ChainIDs(diffIDs)
	layers := make([]*layer, len(descs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, o.jobs())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	var bytes atomic.Int64
	for i, d := range descs {
		if err := d.Digest.Validate(); err != nil {
			return layers, errdefs.Invalidf("layer %d digest %q: %v", i, d.Digest, err)
		}
		id := shortID(d.Digest)
		haveDir := existsAll(s.LayerPath(chains[i]))
		if haveDir && existsAll(s.BlobPath(d.Digest)) {
			layers[i] = &layer{reused: true, digest: d.Digest, diffID: diffIDs[i], mediaType: d.MediaType, blobSize: d.Size}
			res.Reused++
			t.Step("registry", "layer %d (%s): already stored as %s", i, d.Digest, chains[i].Encoded()[:12])
			o.progress(ProgressEvent{ID: id, Status: StatusExists, Total: d.Size, Current: d.Size})
			continue
		}
		o.progress(ProgressEvent{ID: id, Status: StatusWaiting, Total: d.Size})
		wg.Add(1)
		go func(i int, d ocispec.Descriptor) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return
			}
			spec := ingestSpec{keepRaw: true, tarOnly: true, digest: d.Digest, diffID: diffIDs[i], what: fmt.Sprintf("layer %d (%s)", i, d.Digest)}
			l, n, err := s.fetchLayerRetrying(ctx, p, repo, d, spec, haveDir, o)
			bytes.Add(n)
			mu.Lock()
			defer mu.Unlock()
			layers[i] = l
			if err != nil {
				o.progress(ProgressEvent{ID: id, Status: StatusFailed, Total: d.Size, Err: err})
				if len(errs) == 0 || !errors.Is(err, context.Canceled) {
					errs = append(errs, fmt.Errorf("%s: %w", spec.what, err))
				}
				cancel() // one failure fails the pull: stop the others
				return
			}
			o.progress(ProgressEvent{ID: id, Status: StatusPullComplete, Total: d.Size, Current: d.Size})
		}(i, d)
	}
	wg.Wait()
	res.DownloadedBytes = bytes.Load()
	for _, l := range layers {
		if l != nil && !l.reused {
			res.Downloaded++
		}
	}
	if len(errs) > 0 {
		return layers, errs[0]
	}
	return layers, nil
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// retryable tells transfer failures (worth another try) from content the
// layer policy rejects (which would be rejected again).
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrUnsupported) {
		return false
	}
	if errors.Is(err, errdefs.ErrInvalid) && !errors.Is(err, errDigestMismatch) {
		return false
	}
	return true
}

// fetchLayerRetrying downloads one layer, trying again after transfer
// failures with a growing pause. It returns the bytes downloaded in all
// attempts.
func (s *Store) fetchLayerRetrying(ctx context.Context, p *remote.Puller, repo name.Repository, d ocispec.Descriptor, spec ingestSpec, blobOnly bool, o *RegistryOptions) (*layer, int64, error) {
	var total int64
	pause := defaultRetryBackoff
	for attempt := 0; ; attempt++ {
		l, n, err := s.fetchLayer(ctx, p, repo, d, spec, blobOnly, o)
		total += n
		if err == nil {
			return l, total, nil
		}
		if l != nil {
			l.cleanup()
		}
		if attempt >= o.retries() || !retryable(err) || ctx.Err() != nil {
			return nil, total, err
		}
		o.Tracer.Step("registry", "%s: attempt %d failed, retrying in %v: %v", spec.what, attempt+1, pause, err)
		o.progress(ProgressEvent{ID: shortID(d.Digest), Status: StatusRetrying, Total: d.Size, Err: err})
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, total, ctx.Err()
		}
		pause *= 2
	}
}

func (s *Store) fetchLayer(ctx context.Context, p *remote.Puller, repo name.Repository, d ocispec.Descriptor, spec ingestSpec, blobOnly bool, o *RegistryOptions) (*layer, int64, error) {
	rl, err := p.Layer(ctx, repo.Digest(d.Digest.String()))
	if err != nil {
		return nil, 0, classifyRegistryErr(err)
	}
	rc, err := rl.Compressed()
	if err != nil {
		return nil, 0, classifyRegistryErr(err)
	}
	defer rc.Close()
	id := shortID(d.Digest)
	status := StatusDownloading
	if blobOnly {
		// The layer is unpacked already (from another encoding of it):
		// only the blob is missing.
		status = StatusBlobOnly
	}
	cr := &progressReader{r: rc, report: func(n int64) {
		o.progress(ProgressEvent{ID: id, Status: status, Current: n, Total: d.Size})
	}}
	cr.report(0)
	var l *layer
	if blobOnly {
		l, err = s.ingestBlob(cr, spec)
	} else {
		l, err = s.ingestLayer(cr, spec, o.Tracer)
	}
	if err != nil {
		return l, cr.n, err
	}
	if d.MediaType != "" {
		l.mediaType = d.MediaType
	}
	return l, cr.n, nil
}

// progressReader counts bytes and reports them at most every 50ms, and
// at EOF.
type progressReader struct {
	r      io.Reader
	n      int64
	last   time.Time
	report func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if now := time.Now(); err != nil || now.Sub(p.last) >= 50*time.Millisecond {
		p.last = now
		p.report(p.n)
	}
	return n, err
}

// ingestBlob stores a layer blob whose layer dir exists already: the
// stream is verified (digest, and diff ID of its decompressed tar) and
// kept as given, but not unpacked. The returned layer must be cleaned up.
func (s *Store) ingestBlob(r io.Reader, spec ingestSpec) (*layer, error) {
	max := s.MaxLayerSize
	if max <= 0 {
		max = DefaultMaxLayerSize
	}
	f, err := os.CreateTemp(s.blobDir(), ".tmp-")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l := &layer{blobTmp: f.Name()}
	raw := newHashWriter(f)
	tee := io.TeeReader(r, raw)
	br, comp, arch, release, err := openStream(tee, max)
	if err != nil {
		return l, err
	}
	defer release()
	if arch != Tar {
		return l, errdefs.Invalidf("%s is a %v archive, not a tar", spec.what, arch)
	}
	tarHW := newHashWriter(nil)
	if _, err := io.Copy(tarHW, br); err != nil {
		return l, err
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return l, err
	}
	l.diffID, l.digest, l.blobSize, l.compression, l.archive = tarHW.digest(), raw.digest(), raw.size, comp, arch
	if spec.diffID != "" && spec.diffID != l.diffID {
		return l, errdefs.Invalidf("%s: content has diff ID %s, but the image config says %s", spec.what, l.diffID, spec.diffID)
	}
	if spec.digest != "" && spec.digest != l.digest {
		return l, fmt.Errorf("%w: %w", errDigestMismatch, errdefs.Invalidf("%s: content has digest %s, but the manifest says %s", spec.what, l.digest, spec.digest))
	}
	if err := raw.w.Flush(); err != nil {
		return l, err
	}
	if err := f.Chmod(0o644); err != nil {
		return l, err
	}
	if err := f.Sync(); err != nil {
		return l, err
	}
	return l, nil
}
