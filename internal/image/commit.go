package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/trace"
)

// CommitOptions tunes Commit.
type CommitOptions struct {
	// Base is the image the container was made from (an ID).
	Base string
	// Name names the new image; "" leaves it untagged.
	Name string
	// Upper is the container's overlay upper dir, with its id shift.
	Upper TreeSource
	// Author, Comment and CreatedBy go into the config and its history.
	Author, Comment, CreatedBy string
	// Config, when set, replaces the base image's run configuration.
	Config *ocispec.ImageConfig
	Tracer *trace.Tracer
}

// Commit stores a container's changes as a new image: the base image's
// layers (shared, not copied) plus one gzip layer made of the upper dir,
// whose overlay whiteouts and opaque directories become OCI whiteouts.
func (s *Store) Commit(o CommitOptions) (*Image, error) {
	img, err := s.commitImage(o)
	if err != nil {
		return nil, fmt.Errorf("committing %s: %w", o.Upper.Dir, err)
	}
	return img, nil
}

func (s *Store) commitImage(o CommitOptions) (*Image, error) {
	t := o.Tracer
	var names []string
	if o.Name != "" {
		n, err := NormalizeName(o.Name)
		if err != nil {
			return nil, err
		}
		names = []string{n}
	}
	base, err := s.Inspect(o.Base)
	if err != nil {
		return nil, fmt.Errorf("base image: %w", err)
	}
	var config ocispec.Image
	if err := json.Unmarshal(base.ConfigData, &config); err != nil {
		return nil, fmt.Errorf("base image config: %w", err)
	}

	ingest, err := s.lockIngest(true)
	if err != nil {
		return nil, err
	}
	defer ingest.Close()

	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		zw := newGzipWriter(pw)
		err := WriteLayerDiff(zw, o.Upper)
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	t.Step("image", "writing the changes in %s as a layer", o.Upper.Dir)
	l, err := s.ingestLayer(pr, ingestSpec{keepRaw: true, tarOnly: true, what: "the container's changes"}, t)
	pr.CloseWithError(errors.New("commit ended")) // unblocks the writer
	<-done
	if l != nil {
		defer l.cleanup()
	}
	if err != nil {
		return nil, err
	}

	now := time.Now().UTC().Truncate(time.Second)
	config.Created = &now
	if o.Author != "" {
		config.Author = o.Author
	}
	if o.Config != nil {
		config.Config = *o.Config
	}
	config.RootFS.Type = "layers"
	config.RootFS.DiffIDs = append(config.RootFS.DiffIDs, l.diffID)
	config.History = append(config.History, ocispec.History{Created: &now, Author: o.Author, CreatedBy: o.CreatedBy, Comment: o.Comment})
	cfgData, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	var layers []*layer
	for _, bl := range base.Layers {
		layers = append(layers, &layer{reused: true, digest: bl.Digest, diffID: bl.DiffID, mediaType: ociLayerType(bl.MediaType), blobSize: bl.BlobSize})
	}
	layers = append(layers, l)
	imgs, err := s.store(names, cfgData, nil, layers, false, t)
	if err != nil {
		return nil, err
	}
	return imgs[0], nil
}

// ociLayerType maps Docker's layer media types to their OCI equivalents,
// for manifests cfs writes (always OCI).
func ociLayerType(mt string) string {
	switch {
	case mt == "application/vnd.docker.image.rootfs.diff.tar.gzip":
		return ocispec.MediaTypeImageLayerGzip
	case mt == "application/vnd.docker.image.rootfs.diff.tar.zstd":
		return ocispec.MediaTypeImageLayerZstd
	case mt == "application/vnd.docker.image.rootfs.diff.tar", mt == "":
		return ocispec.MediaTypeImageLayer
	case strings.HasPrefix(mt, "application/vnd.docker.image.rootfs.foreign"):
		return ocispec.MediaTypeImageLayerGzip
	}
	return mt
}
