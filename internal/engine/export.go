package engine

import (
	"io"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
)

// Export writes a container's file system as one flat tar: its image's
// layers with its own changes on top, merged as overlayfs shows them
// (whiteouts and opaque directories applied), without mounting anything.
func (e *Engine) Export(container string, w io.Writer) error {
	r, err := e.Containers.Get(container)
	if err != nil {
		return err
	}
	s, err := e.Images()
	if err != nil {
		return err
	}
	img, err := s.Get(r.ImageID)
	if err != nil {
		return errdefs.NotFoundf("container %s: its image %s is gone: %v", r.Name, r.ImageID, err)
	}
	var srcs []image.TreeSource
	for _, l := range img.Layers {
		srcs = append(srcs, image.TreeSource{Dir: l})
	}
	srcs = append(srcs, e.upperOf(r.ID, r.Extra))
	return image.WriteFlattened(w, srcs)
}
