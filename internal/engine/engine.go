// Package engine is the façade every front end drives (the CLI, the HTTP
// API): it turns "image + user options" into an OCI spec and a root
// filesystem, and hands them to the runtime.
package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/cfs-org/cfs/internal/image"
	"github.com/cfs-org/cfs/internal/snapshot"
	"github.com/cfs-org/cfs/internal/store"
	"github.com/cfs-org/cfs/internal/trace"
)

// DefaultRoot is where cfs keeps its state unless --root or CFS_ROOT say
// otherwise.
const DefaultRoot = "/var/lib/cfs"

// Engine holds the stores. It is cheap to construct: each cfs command makes
// one.
type Engine struct {
	Root       string
	images     *image.Store
	Containers *store.Store
	Snapshots  snapshot.Snapshotter
	Tracer     *trace.Tracer
	spares     spares // the supervisor's (EnableSpares)
}

// New opens (creating if needed) the state under root.
func New(root string, tr *trace.Tracer) (*Engine, error) {
	if root == "" {
		root = DefaultRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	// 0711: a --userns remap container's root (an unprivileged host uid)
	// must reach its own directory below; nothing can be listed.
	if err := os.MkdirAll(root, 0o711); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", root, err)
	}
	cs, err := store.Open(filepath.Join(root, "containers"))
	if err != nil {
		return nil, err
	}
	os.Chmod(filepath.Join(root, "containers"), 0o711)
	sweepSpares()
	return &Engine{Root: root, Containers: cs, Snapshots: snapshot.Overlay{}, Tracer: tr}, nil
}

// Images opens the image store on first use (container commands that
// need no image pay nothing for it).
func (e *Engine) Images() (*image.Store, error) {
	if e.images == nil {
		s, err := image.Open(e.Root)
		if err != nil {
			return nil, err
		}
		e.images = s
	}
	return e.images, nil
}
