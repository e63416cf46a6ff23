package engine

import (
	"github.com/cfs-org/cfs/internal/errdefs"
)

// RemoveImage removes an image name; its layers go when no other image
// holds them. An image that containers were made from stays unless force:
// their root filesystems stack on its layers.
func (e *Engine) RemoveImage(ref string, force bool) error {
	s, err := e.Images()
	if err != nil {
		return err
	}
	img, err := s.Get(ref)
	if err != nil {
		return err
	}
	if !force {
		recs, err := e.Containers.List()
		if err != nil {
			return err
		}
		for _, r := range recs {
			if r.ImageID == img.ID.String() {
				return errdefs.Conflictf("unable to remove image %s: container %s uses it (remove the container or use -f)", ref, r.ID[:12])
			}
		}
	}
	return s.Remove(ref)
}
