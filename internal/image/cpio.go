package image

import (
	"archive/tar"
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/cfs-org/cfs/internal/trace"
)

// The cpio "newc" format (070701; 070702 adds a data checksum), as written
// by GNU cpio -H newc and the kernel's gen_init_cpio: a 110-byte ASCII
// header of 8-digit hex fields, the NUL-terminated name padded so header
// plus name is a multiple of 4, then the data padded to 4. The archive
// ends with an entry named "TRAILER!!!". Initramfs images may concatenate
// several archives, separated by zero padding.

const (
	cpioHeaderLen = 110
	cpioTrailer   = "TRAILER!!!"
	cpioMaxName   = 4096 // PATH_MAX
)

// File type bits of the cpio (and stat) mode field.
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// cpioHeader is one newc entry.
type cpioHeader struct {
	Name      string
	Ino       uint32
	Mode      uint32
	UID, GID  uint32
	Nlink     uint32
	Mtime     uint32
	Size      int64
	DevMajor  uint32
	DevMinor  uint32
	RdevMajor uint32
	RdevMinor uint32
	check     uint32
	crc       bool
}

// cpioReader reads a newc archive sequentially, like archive/tar's Reader.
type cpioReader struct {
	r       *bufio.Reader
	off     int64 // bytes consumed, for padding and error messages
	remain  int64 // data bytes left in the current entry
	pad     int64 // padding after the current entry's data
	sum     uint32
	cur     *cpioHeader
	trailed bool // a trailer was seen; only padding or a new archive may follow
}

func newCpioReader(r io.Reader) *cpioReader {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 1<<16)
	}
	return &cpioReader{r: br}
}

var errCpioTruncated = errors.New("cpio archive is truncated")

func (c *cpioReader) discard(n int64) error {
	d, err := c.r.Discard(int(n))
	c.off += int64(d)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errCpioTruncated
		}
		return err
	}
	return nil
}

// Next advances to the next entry, skipping the rest of the current one.
// It returns io.EOF after the last trailer.
func (c *cpioReader) Next() (*cpioHeader, error) {
	if c.cur != nil {
		if err := c.finishEntry(); err != nil {
			return nil, err
		}
	}
	c.cur = nil
	for {
		if c.trailed {
			// Skip the zero padding after a trailer; another archive may follow.
			for {
				b, err := c.r.Peek(1)
				if errors.Is(err, io.EOF) || len(b) == 0 {
					return nil, io.EOF
				}
				if err != nil {
					return nil, err
				}
				if b[0] != 0 {
					break
				}
				c.r.Discard(1)
				c.off++
			}
			if c.off%4 != 0 {
				return nil, fmt.Errorf("cpio: unexpected data at offset %d after trailer", c.off)
			}
			c.trailed = false
		}
		h, err := c.readHeader()
		if err != nil {
			return nil, err
		}
		if h.Name == cpioTrailer {
			c.trailed = true
			continue
		}
		c.cur = h
		c.remain = h.Size
		c.pad = (4 - h.Size%4) % 4
		c.sum = 0
		return h, nil
	}
}

func (c *cpioReader) readHeader() (*cpioHeader, error) {
	var raw [cpioHeaderLen]byte
	n, err := io.ReadFull(c.r, raw[:])
	c.off += int64(n)
	if err != nil {
		if errors.Is(err, io.EOF) && !c.trailed && c.off == 0 {
			return nil, fmt.Errorf("cpio: empty archive")
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("cpio: header at offset %d: %w (no %s entry)", c.off-int64(n), errCpioTruncated, cpioTrailer)
		}
		return nil, err
	}
	magic := string(raw[:6])
	if magic != "070701" && magic != "070702" {
		return nil, fmt.Errorf("cpio: bad magic %q at offset %d (only newc 070701/070702 is supported)", magic, c.off-int64(n))
	}
	var f [13]uint32
	for i := range f {
		s := string(raw[6+8*i : 14+8*i])
		v, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			return nil, fmt.Errorf("cpio: header at offset %d: bad hex field %q", c.off-int64(n), s)
		}
		f[i] = uint32(v)
	}
	h := &cpioHeader{
		Ino: f[0], Mode: f[1], UID: f[2], GID: f[3], Nlink: f[4], Mtime: f[5], Size: int64(f[6]),
		DevMajor: f[7], DevMinor: f[8], RdevMajor: f[9], RdevMinor: f[10], check: f[12],
		crc: magic == "070702",
	}
	namesize := int64(f[11])
	if namesize < 1 || namesize > cpioMaxName {
		return nil, fmt.Errorf("cpio: header at offset %d: bad name size %d", c.off-int64(n), namesize)
	}
	// Name plus padding so that header+name is a multiple of 4.
	total := namesize + (4-(cpioHeaderLen+namesize)%4)%4
	buf := make([]byte, total)
	m, err := io.ReadFull(c.r, buf)
	c.off += int64(m)
	if err != nil {
		return nil, fmt.Errorf("cpio: name at offset %d: %w", c.off-int64(m), errCpioTruncated)
	}
	if buf[namesize-1] != 0 {
		return nil, fmt.Errorf("cpio: name at offset %d is not NUL-terminated", c.off-int64(m))
	}
	h.Name = string(buf[:namesize-1])
	if strings.IndexByte(h.Name, 0) >= 0 {
		return nil, fmt.Errorf("cpio: name %q contains a NUL byte", h.Name)
	}
	return h, nil
}

// Read reads the current entry's data.
func (c *cpioReader) Read(p []byte) (int, error) {
	if c.cur == nil || c.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.remain {
		p = p[:c.remain]
	}
	n, err := c.r.Read(p)
	c.off += int64(n)
	c.remain -= int64(n)
	if c.cur.crc {
		for _, b := range p[:n] {
			c.sum += uint32(b)
		}
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return n, fmt.Errorf("cpio entry %q: %w", c.cur.Name, errCpioTruncated)
		}
		return n, err
	}
	if c.remain == 0 && c.cur.crc && c.sum != c.cur.check {
		return n, fmt.Errorf("cpio entry %q: data checksum mismatch", c.cur.Name)
	}
	return n, nil
}

func (c *cpioReader) finishEntry() error {
	if c.remain > 0 {
		if _, err := io.Copy(io.Discard, c); err != nil {
			return err
		}
	}
	if err := c.discard(c.pad); err != nil {
		return fmt.Errorf("cpio entry %q: %w", c.cur.Name, err)
	}
	c.pad = 0
	return nil
}

// cpioMaxSymlink bounds a symlink target read into memory.
const cpioMaxSymlink = 4096

type inodeKey struct{ major, minor, ino uint32 }

// pendingLink is a hardlinked file whose data has not been seen yet.
type pendingLink struct {
	hdrs    []*tar.Header
	emitted string // name written with the data; "" while pending
}

// cpioToTar converts a newc cpio stream into a tar stream written to w.
// Hardlinks (entries sharing dev/inode with nlink > 1) become tar
// hardlinks to the first name written. GNU cpio stores the data with the
// LAST name of a link set and gives the others size 0, the kernel's
// gen_init_cpio with the first: names seen with no data are held back
// until the data arrives (or the archive ends, for an empty file).
// Sockets cannot be stored in tar and are skipped.
func cpioToTar(r io.Reader, w io.Writer, t *trace.Tracer) error {
	cr := newCpioReader(r)
	tw := tar.NewWriter(w)
	links := map[inodeKey]*pendingLink{}
	var order []inodeKey
	buf := make([]byte, 1<<16)
	for {
		h, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		// Like the kernel's initramfs loader and GNU cpio, treat names as
		// relative to the root: "/bin/sh", "./bin/sh" and "bin/sh" are one
		// file. ".." stays in and is rejected by the unpacker.
		name := strings.TrimLeft(h.Name, "/")
		for strings.HasPrefix(name, "./") {
			name = strings.TrimLeft(name[2:], "/")
		}
		if name == "" {
			name = "."
		}
		hdr := &tar.Header{
			Name:    name,
			Mode:    int64(h.Mode & 0o7777),
			Uid:     int(h.UID),
			Gid:     int(h.GID),
			ModTime: time.Unix(int64(h.Mtime), 0),
			Format:  tar.FormatPAX,
		}
		switch h.Mode & sIFMT {
		case sIFDIR:
			hdr.Typeflag = tar.TypeDir
			if !strings.HasSuffix(hdr.Name, "/") {
				hdr.Name += "/"
			}
		case sIFREG:
			hdr.Typeflag = tar.TypeReg
			hdr.Size = h.Size
			if h.Nlink > 1 {
				k := inodeKey{h.DevMajor, h.DevMinor, h.Ino}
				pl := links[k]
				if pl == nil {
					pl = &pendingLink{}
					links[k] = pl
					order = append(order, k)
				}
				if pl.emitted != "" {
					hdr.Typeflag, hdr.Size, hdr.Linkname = tar.TypeLink, 0, pl.emitted
					if err := tw.WriteHeader(hdr); err != nil {
						return fmt.Errorf("cpio entry %q: %w", h.Name, err)
					}
					continue // any data is the same inode's, already written
				}
				if h.Size == 0 {
					pl.hdrs = append(pl.hdrs, hdr)
					continue
				}
				if err := writeTarFile(tw, hdr, cr, buf); err != nil {
					return fmt.Errorf("cpio entry %q: %w", h.Name, err)
				}
				pl.emitted = hdr.Name
				for _, lh := range pl.hdrs {
					lh.Typeflag, lh.Linkname = tar.TypeLink, pl.emitted
					if err := tw.WriteHeader(lh); err != nil {
						return fmt.Errorf("cpio entry %q: %w", lh.Name, err)
					}
				}
				pl.hdrs = nil
				continue
			}
		case sIFLNK:
			if h.Size > cpioMaxSymlink {
				return fmt.Errorf("cpio entry %q: symlink target of %d bytes is too long", h.Name, h.Size)
			}
			target := make([]byte, h.Size)
			if _, err := io.ReadFull(cr, target); err != nil {
				return fmt.Errorf("cpio entry %q: %w", h.Name, err)
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(target)
		case sIFCHR, sIFBLK:
			hdr.Typeflag = tar.TypeChar
			if h.Mode&sIFMT == sIFBLK {
				hdr.Typeflag = tar.TypeBlock
			}
			hdr.Devmajor, hdr.Devminor = int64(h.RdevMajor), int64(h.RdevMinor)
		case sIFIFO:
			hdr.Typeflag = tar.TypeFifo
		case sIFSOCK:
			t.Step("image", "skipping socket %q: tar cannot hold sockets", h.Name)
			continue
		default:
			return fmt.Errorf("cpio entry %q: unknown file type in mode %#o", h.Name, h.Mode)
		}
		if err := writeTarFile(tw, hdr, cr, buf); err != nil {
			return fmt.Errorf("cpio entry %q: %w", h.Name, err)
		}
	}
	// Link sets whose data never came are empty files.
	for _, k := range order {
		pl := links[k]
		if pl.emitted != "" || len(pl.hdrs) == 0 {
			continue
		}
		first := pl.hdrs[0]
		if err := tw.WriteHeader(first); err != nil {
			return fmt.Errorf("cpio entry %q: %w", first.Name, err)
		}
		for _, lh := range pl.hdrs[1:] {
			lh.Typeflag, lh.Linkname = tar.TypeLink, first.Name
			if err := tw.WriteHeader(lh); err != nil {
				return fmt.Errorf("cpio entry %q: %w", lh.Name, err)
			}
		}
	}
	return tw.Close()
}

func writeTarFile(tw *tar.Writer, hdr *tar.Header, r io.Reader, buf []byte) error {
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
		return nil
	}
	n, err := io.CopyBuffer(tw, io.LimitReader(r, hdr.Size), buf)
	if err != nil {
		return err
	}
	if n != hdr.Size {
		return errCpioTruncated
	}
	return nil
}
