package image

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// sharedImages returns shared/images beside the repository root (CI and
// developers have it there), or skips.
func sharedImages(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skipf("no go.mod above the test directory: cannot locate shared/images")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "images")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("test images not available at %s (shared/ beside the repository root): %v", p, err)
	}
	return p
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("needs root: unpacking sets ownership, device whiteouts and trusted.* xattrs (euid %d)", os.Geteuid())
	}
}

// tarEntry describes one entry of a tar built in a test.
type tarEntry struct {
	name, link string
	typ        byte
	mode       int64
	uid, gid   int
	data       string
	size       int64 // header size when data is not given (truncation tests)
	major      int64
	minor      int64
	pax        map[string]string
	mtime      time.Time
}

var testMtime = time.Date(2020, 2, 3, 4, 5, 6, 0, time.UTC)

func buildTar(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
			if typ == tar.TypeDir {
				mode = 0o755
			}
		}
		mt := e.mtime
		if mt.IsZero() {
			mt = testMtime
		}
		hdr := &tar.Header{Typeflag: typ, Name: e.name, Linkname: e.link, Mode: mode, Uid: e.uid, Gid: e.gid,
			ModTime: mt, Devmajor: e.major, Devminor: e.minor, PAXRecords: e.pax}
		if typ == tar.TypeReg {
			hdr.Size = int64(len(e.data))
		}
		if e.pax != nil {
			hdr.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatalf("tar header %q: %v", e.name, err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cpioEntry describes one entry of a newc archive built in a test.
type cpioEntry struct {
	name       string
	mode       uint32 // with type bits
	uid, gid   uint32
	ino, nlink uint32
	mtime      uint32
	data       string
	rmaj, rmin uint32
}

func buildCpio(entries []cpioEntry, crc bool) []byte {
	var buf bytes.Buffer
	magic := "070701"
	if crc {
		magic = "070702"
	}
	pad := func() {
		for buf.Len()%4 != 0 {
			buf.WriteByte(0)
		}
	}
	write := func(e cpioEntry) {
		size := len(e.data)
		var sum uint32
		for _, b := range []byte(e.data) {
			sum += uint32(b)
		}
		if !crc {
			sum = 0
		}
		nlink := e.nlink
		if nlink == 0 {
			nlink = 1
		}
		fmt.Fprintf(&buf, "%s%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
			magic, e.ino, e.mode, e.uid, e.gid, nlink, e.mtime, size, 0, 0, e.rmaj, e.rmin, len(e.name)+1, sum)
		buf.WriteString(e.name)
		buf.WriteByte(0)
		pad()
		buf.WriteString(e.data)
		pad()
	}
	for _, e := range entries {
		write(e)
	}
	write(cpioEntry{name: cpioTrailer})
	return buf.Bytes()
}
