package engine

import (
	"io/fs"
	"path/filepath"

	digest "github.com/opencontainers/go-digest"

	"github.com/cfs-org/cfs/internal/image"
	"github.com/cfs-org/cfs/internal/store"
)

// imagesInUse returns the IDs of the images containers were made from:
// their root file systems stack on those layers.
func (e *Engine) imagesInUse() (map[digest.Digest]bool, []*store.Record, error) {
	recs, err := e.Containers.List()
	if err != nil {
		return nil, nil, err
	}
	used := map[digest.Digest]bool{}
	for _, r := range recs {
		used[digest.Digest(r.ImageID)] = true
	}
	return used, recs, nil
}

// PruneImages removes untagged images (all unused ones with all) that no
// container uses, and the layers only they held.
func (e *Engine) PruneImages(all bool) (*image.PruneReport, error) {
	s, err := e.Images()
	if err != nil {
		return nil, err
	}
	used, _, err := e.imagesInUse()
	if err != nil {
		return nil, err
	}
	return s.Prune(used, all)
}

// DiskUsage is `cfs system df`.
type DiskUsage struct {
	Images     *image.Usage
	Containers []ContainerUsage
}

// ContainerUsage is the disk use of one container's writable layer.
type ContainerUsage struct {
	ID, Name, Image string
	Running         bool
	Size            int64
}

// DiskUsage reports what images and containers take on disk.
func (e *Engine) DiskUsage() (*DiskUsage, error) {
	s, err := e.Images()
	if err != nil {
		return nil, err
	}
	used, recs, err := e.imagesInUse()
	if err != nil {
		return nil, err
	}
	u, err := s.Usage(used)
	if err != nil {
		return nil, err
	}
	du := &DiskUsage{Images: u}
	for _, r := range recs {
		r = e.Refresh(r)
		du.Containers = append(du.Containers, ContainerUsage{ID: r.ID, Name: r.Name, Image: r.Image, Running: r.State.Running,
			Size: treeSize(filepath.Join(e.Containers.Dir(r.ID), "upper"))})
	}
	return du, nil
}

func treeSize(dir string) int64 {
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
