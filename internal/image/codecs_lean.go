//go:build cfs_lean

package image

import (
	"io"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// The lean front end (cfs_lean, see cmd/cfs/forward_lean.go) links no
// codec: every command that reads or writes compressed data (import,
// load, save, pull, push, commit) runs in the full cfs it carries.

func libDecompress(c Compression, r io.Reader) (io.Reader, func(), error) {
	return nil, nil, errdefs.Unsupportedf("%v decompression is not built into the lean cfs front end", c)
}

func newGzipWriter(w io.Writer) io.WriteCloser {
	return &failWriter{errdefs.Unsupportedf("gzip compression is not built into the lean cfs front end")}
}

type failWriter struct{ err error }

func (f *failWriter) Write([]byte) (int, error) { return 0, f.err }
func (f *failWriter) Close() error              { return f.err }
