package image

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// Compression is a stream compression format, detected from magic bytes.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Xz
	Zstd
	Bzip2
	LzmaAlone // the legacy ".lzma" format of LZMA SDK / lzma-utils
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Xz:
		return "xz"
	case Zstd:
		return "zstd"
	case Bzip2:
		return "bzip2"
	case LzmaAlone:
		return "lzma"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// Archive is the container format of a decompressed stream.
type Archive int

const (
	UnknownArchive Archive = iota
	Tar
	CpioNewc
)

func (a Archive) String() string {
	switch a {
	case Tar:
		return "tar"
	case CpioNewc:
		return "cpio newc"
	}
	return "unknown"
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
)

// lzmaHeaderLen is the lzma-alone header: properties (1), dictionary size
// (4, LE), uncompressed size (8, LE; all ones when unknown).
const lzmaHeaderLen = 13

// DetectCompression identifies the compression of a stream from its first
// bytes. head should hold at least 13 bytes when the stream is that long.
// Strong magics are checked first; lzma-alone has no magic, so it is only
// a header sanity check, made after ruling out an uncompressed archive.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	case bytes.HasPrefix(head, magicXz):
		return Xz
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	case bytes.HasPrefix(head, magicBzip2) && len(head) > 3 && '1' <= head[3] && head[3] <= '9':
		return Bzip2
	case DetectArchive(head) != UnknownArchive:
		return Uncompressed
	case isLzmaAlone(head):
		return LzmaAlone
	}
	return Uncompressed
}

// isLzmaAlone checks an lzma-alone header for sanity: lc/lp/pb properties
// in range (lc+lp <= 4 as every real encoder writes, 0x5d being the usual
// lc=3 lp=0 pb=2), a dictionary size of 2^n or 2^n+2^(n-1) between 4 KiB
// and 1.5 GiB, and an uncompressed size that is unknown (-1) or below 1 PiB.
func isLzmaAlone(h []byte) bool {
	if len(h) < lzmaHeaderLen {
		return false
	}
	p := int(h[0])
	if p >= 9*5*5 {
		return false
	}
	lc, lp := p%9, (p/9)%5
	if lc+lp > 4 {
		return false
	}
	dict := binary.LittleEndian.Uint32(h[1:5])
	if dict < 1<<12 || dict > 3<<29 {
		return false
	}
	// 2^n, or 2^n + 2^(n-1) as lzma-utils allows.
	if dict&(dict-1) != 0 {
		low := dict & -dict
		if dict != low*3 {
			return false
		}
	}
	size := binary.LittleEndian.Uint64(h[5:13])
	return size == ^uint64(0) || size < 1<<50
}

// DetectArchive identifies a tar or cpio newc stream from its first block
// (up to 512 bytes).
func DetectArchive(head []byte) Archive {
	if len(head) >= 6 && (string(head[:6]) == "070701" || string(head[:6]) == "070702") {
		return CpioNewc
	}
	if len(head) < 512 {
		return UnknownArchive
	}
	// POSIX "ustar\x0000" and GNU "ustar  \x00" both start with "ustar".
	if string(head[257:262]) == "ustar" {
		return Tar
	}
	if validTarChecksum(head[:512]) {
		return Tar
	}
	return UnknownArchive
}

// validTarChecksum checks the header checksum of a pre-POSIX (v7) tar
// header: the unsigned sum of its bytes with the checksum field read as
// spaces. An all-zero block (an empty archive) does not count.
func validTarChecksum(b []byte) bool {
	var sum, nonzero int64
	for i, c := range b {
		if 148 <= i && i < 156 {
			c = ' '
		}
		sum += int64(c)
		if b[i] != 0 {
			nonzero++
		}
	}
	if nonzero == 0 {
		return false
	}
	field := bytes.Trim(b[148:156], " \x00")
	if len(field) == 0 {
		return false
	}
	var want int64
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	return want == sum
}

// hostDecoders are host tools that decode faster than the pure-Go
// decoders (xz-utils about 2.5x for xz and lzma-alone, whose Go decoder
// also fills its whole dictionary before the first byte comes out). They
// are used when installed; UseHostDecoders turns them off.
var hostDecoders = map[Compression][]string{
	Xz:        {"xz", "--decompress", "--stdout", "--quiet", "--format=xz", "--memlimit-decompress=1GiB"},
	LzmaAlone: {"xz", "--decompress", "--stdout", "--quiet", "--format=lzma", "--memlimit-decompress=1GiB"},
	Bzip2:     {"bzip2", "--decompress", "--stdout", "--quiet"},
}

// UseHostDecoders selects host decompression tools when they exist. Tests
// and callers wanting a pure-Go path set it to false.
var UseHostDecoders = true

var hostToolPath = struct {
	sync.Mutex
	m map[string]string
}{m: map[string]string{}}

// lookHostTool finds a tool in PATH once per process.
func lookHostTool(name string) string {
	hostToolPath.Lock()
	defer hostToolPath.Unlock()
	p, ok := hostToolPath.m[name]
	if !ok {
		p, _ = exec.LookPath(name)
		hostToolPath.m[name] = p
	}
	return p
}

// cmdReader reads a decoder process's stdout and turns its failure into
// a read error carrying its stderr.
type cmdReader struct {
	out    io.ReadCloser
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   bool
	err    error
}

func (c *cmdReader) Read(p []byte) (int, error) {
	if c.done {
		return 0, c.err
	}
	n, err := c.out.Read(p)
	if errors.Is(err, io.EOF) {
		c.done = true
		if werr := c.cmd.Wait(); werr != nil {
			c.err = fmt.Errorf("%s: %v: %s", filepath.Base(c.cmd.Path), werr, strings.TrimSpace(c.stderr.String()))
		} else {
			c.err = io.EOF
		}
		return n, c.err
	}
	return n, err
}

func (c *cmdReader) release() {
	if !c.done {
		c.cmd.Process.Kill()
		c.cmd.Wait()
		c.done = true
	}
}

func hostDecompress(path string, args []string, r io.Reader) (io.Reader, func(), error) {
	cmd := exec.Command(path, args...)
	cmd.Stdin = r
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	// After a kill, do not wait for the stdin copier: r may be a pipe
	// that blocks.
	cmd.WaitDelay = time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	cr := &cmdReader{out: out, cmd: cmd, stderr: stderr}
	return cr, cr.release, nil
}

// decompress returns a reader of the decompressed stream and a function
// that releases decoder resources.
func decompress(c Compression, r io.Reader) (io.Reader, func(), error) {
	nop := func() {}
	if argv := hostDecoders[c]; argv != nil && UseHostDecoders {
		if p := lookHostTool(argv[0]); p != "" {
			return hostDecompress(p, argv[1:], r)
		}
	}
	if c == Uncompressed {
		return r, nop, nil
	}
	return libDecompress(c, r)
}

// openStream detects the compression and the archive format of r and
// returns a buffered reader of the decompressed archive. release must be
// called when done.
// The decompressed stream fails with errLayerTooBig past max bytes.
func openStream(r io.Reader, max int64) (br *bufio.Reader, c Compression, a Archive, release func(), err error) {
	raw := bufio.NewReaderSize(r, 1<<20)
	head, err := raw.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, 0, 0, nil, fmt.Errorf("reading input: %w", err)
	}
	if len(head) == 0 {
		return nil, 0, 0, nil, errdefs.Invalidf("input is empty")
	}
	c = DetectCompression(head)
	dr, release, err := decompress(c, raw)
	if err != nil {
		return nil, 0, 0, nil, errdefs.Invalidf("input looks %v-compressed but is not: %v", c, err)
	}
	br = bufio.NewReaderSize(&limitReader{r: dr, n: max, max: max}, 1<<20)
	head, err = br.Peek(512)
	if err != nil && !errors.Is(err, io.EOF) {
		release()
		return nil, 0, 0, nil, fmt.Errorf("%w: decompressing %v input: %w", errdefs.ErrInvalid, c, err)
	}
	a = DetectArchive(head)
	if a == UnknownArchive {
		release()
		what := "uncompressed data"
		if c != Uncompressed {
			what = c.String() + "-compressed data"
		}
		if len(head) >= 6 && string(head[:6]) == "070707" {
			return nil, 0, 0, nil, errdefs.Unsupportedf("input is an odc (070707) cpio archive; only newc (070701/070702) is supported")
		}
		return nil, 0, 0, nil, errdefs.Invalidf("input is %s that is neither a tar nor a cpio newc archive", what)
	}
	return br, c, a, release, nil
}
