package image

import (
	"fmt"
	"path"
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

// UnpackOptions tunes UnpackLayer.
type UnpackOptions struct {
	Tracer *trace.Tracer
	// MaxSize bounds the bytes of file data one layer may hold; 0 means
	// DefaultMaxLayerSize. The caller should also bound the stream itself
	// (headers and padding), as Import does.
	MaxSize int64
}

// UnpackStats describes an unpacked layer.
type UnpackStats struct {
	Entries int   // archive entries applied
	Size    int64 // bytes of regular file data
}

// DefaultMaxLayerSize bounds the unpacked size of one layer.
const DefaultMaxLayerSize int64 = 64 << 30

// OCI whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// Overlay's on-disk markers for whiteouts (Documentation/filesystems/overlayfs.rst).
// A mount with the "userxattr" option (what a user namespace mounts, as
// --userns remap containers do) reads the user.overlay.* names instead of
// trusted.overlay.*, so opaque directories carry both.
const (
	overlayOpaqueXattr     = "trusted.overlay.opaque"
	overlayUserOpaqueXattr = "user.overlay.opaque"
	overlayXattrPrefix     = "trusted.overlay."
	overlayUserXattrPrefix = "user.overlay."
)

// isOverlayXattr reports overlay's own metadata, which must never come
// from (or go into) a layer: it would steer overlayfs.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, overlayXattrPrefix) || strings.HasPrefix(name, overlayUserXattrPrefix)
}

// cleanEntryName turns an archive name into a path relative to the layer
// root ("" for the root itself), or an ErrInvalid error naming the entry
// when it would land outside the layer. Names are cleaned lexically: no
// symlink is ever followed while unpacking, so "a/../b" is "b".
func cleanEntryName(name string) (string, error) {
	if name == "" {
		return "", errdefs.Invalidf("layer entry with an empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", entryInvalid(name, "absolute path escapes the layer")
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", entryInvalid(name, "path escapes the layer")
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// entryInvalid is the error for an entry the layer policy rejects.
func entryInvalid(name, format string, args ...any) error {
	return errdefs.Invalidf("layer entry %q: %s", name, fmt.Sprintf(format, args...))
}

// entryErr wraps a failure to apply an entry.
func entryErr(name string, err error) error {
	return fmt.Errorf("layer entry %q: %w", name, err)
}
