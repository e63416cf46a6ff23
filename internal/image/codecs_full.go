//go:build !cfs_lean

package image

import (
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// The codecs of every build but the lean front end (cfs_lean, see
// cmd/cfs/forward_lean.go): their packages cost about 0.6 ms of
// initialisation in every process that links them.

// lzmaMaxDict bounds the dictionary an lzma-alone header may ask for, so
// a hostile header cannot make us allocate gigabytes.
const lzmaMaxDict = 1 << 28

// libDecompress decodes c with a pure-Go decoder.
func libDecompress(c Compression, r io.Reader) (io.Reader, func(), error) {
	nop := func() {}
	// Pure-Go decoders run ahead in their own goroutine (zstd's has its
	// own).
	ahead := func(dr io.Reader, release func()) (io.Reader, func(), error) {
		ra := newReadahead(dr, release)
		return ra, ra.Close, nil
	}
	switch c {
	case Uncompressed:
		return r, nop, nil
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("gzip: %w", err)
		}
		return ahead(zr, func() { zr.Close() })
	case Xz:
		xr, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("xz: %w", err)
		}
		return ahead(xr, nop)
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, nil, fmt.Errorf("zstd: %w", err)
		}
		return zr, zr.Close, nil
	case Bzip2:
		return ahead(bzip2.NewReader(r), nop)
	case LzmaAlone:
		lr, err := lzma.ReaderConfig{DictCap: lzmaMaxDict}.NewReader(r)
		if err != nil {
			return nil, nil, fmt.Errorf("lzma: %w", err)
		}
		return ahead(lr, nop)
	}
	return nil, nil, errdefs.Unsupportedf("compression %v", c)
}

// newGzipWriter compresses into w at the default level.
func newGzipWriter(w io.Writer) io.WriteCloser {
	zw, _ := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	return zw
}
