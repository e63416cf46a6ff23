package image

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func sampleTar(t testing.TB) []byte {
	return buildTar(t, []tarEntry{
		{name: "bin/", typ: '5'},
		{name: "bin/hello", data: "hello world\n", mode: 0o755},
	})
}

func TestDetectCompressionMagic(t *testing.T) {
	tarData := sampleTar(t)
	cpioData := buildCpio([]cpioEntry{{name: "a", mode: sIFREG | 0o644, data: "x"}}, false)
	lzmaHdr := []byte{0x5d, 0, 0, 0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00}
	tests := []struct {
		name string
		head []byte
		want Compression
	}{
		{"gzip", []byte{0x1f, 0x8b, 8, 0}, Gzip},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 4}, Xz},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0x24}, Zstd},
		{"bzip2", []byte("BZh91AY&SY"), Bzip2},
		{"bzip2 bad level is not bzip2", []byte("BZhx............."), Uncompressed},
		{"lzma-alone", lzmaHdr, LzmaAlone},
		{"lzma-alone dict 3*2^n", []byte{0x5d, 0, 0, 0, 0x3, 0x10, 0, 0, 0, 0, 0, 0, 0}, LzmaAlone},
		{"lzma bad properties", append([]byte{0xe1}, lzmaHdr[1:]...), Uncompressed},
		{"lzma odd dict", []byte{0x5d, 0x01, 0x23, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, Uncompressed},
		{"lzma huge size", []byte{0x5d, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f}, Uncompressed},
		{"tar", tarData, Uncompressed},
		{"cpio", cpioData, Uncompressed},
		{"short", []byte{0x5d}, Uncompressed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectCompression(tc.head); got != tc.want {
				t.Fatalf("DetectCompression = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDetectArchive(t *testing.T) {
	tarData := sampleTar(t)
	// A v7 tar: no ustar magic, but a valid checksum.
	v7 := append([]byte(nil), tarData[:512]...)
	copy(v7[257:265], make([]byte, 8))
	var sum int
	for i, c := range v7 {
		if 148 <= i && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	copy(v7[148:156], []byte(octal7(sum)+"\x00 "))
	broken := append([]byte(nil), v7...)
	broken[0] ^= 0xff
	tests := []struct {
		name string
		head []byte
		want Archive
	}{
		{"ustar", tarData, Tar},
		{"v7 tar", v7, Tar},
		{"bad checksum", broken, UnknownArchive},
		{"zeros", make([]byte, 512), UnknownArchive},
		{"newc", []byte("070701000000"), CpioNewc},
		{"newc crc", []byte("070702000000"), CpioNewc},
		{"odc", []byte("070707000000"), UnknownArchive},
		{"short", []byte("07070"), UnknownArchive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := DetectArchive(tc.head); got != tc.want {
				t.Fatalf("DetectArchive = %v, want %v", got, tc.want)
			}
		})
	}
}

func octal7(n int) string {
	s := ""
	for i := 0; i < 6; i++ {
		s = string(rune('0'+n%8)) + s
		n /= 8
	}
	return s
}

// goCompressors are Go encoders for each codec that has one.
var goCompressors = map[Compression]func(io.Writer) (io.WriteCloser, error){
	Gzip:      func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriter(w), nil },
	Zstd:      func(w io.Writer) (io.WriteCloser, error) { return zstd.NewWriter(w) },
	Xz:        func(w io.Writer) (io.WriteCloser, error) { return xz.NewWriter(w) },
	LzmaAlone: func(w io.Writer) (io.WriteCloser, error) { return lzma.NewWriter(w) },
}

// cliCompressors are the Debian tools, used when installed (bzip2 has no
// Go encoder).
var cliCompressors = map[Compression][]string{
	Gzip:      {"gzip", "-c"},
	Xz:        {"xz", "-c"},
	Zstd:      {"zstd", "-q", "-c"},
	Bzip2:     {"bzip2", "-c"},
	LzmaAlone: {"xz", "--format=lzma", "-c"},
}

func compressWith(t testing.TB, c Compression, data []byte, cli bool) []byte {
	t.Helper()
	if c == Uncompressed {
		return data
	}
	if cli {
		argv := cliCompressors[c]
		if _, err := exec.LookPath(argv[0]); err != nil {
			t.Skipf("%s not installed (apt-get install %s)", argv[0], argv[0])
		}
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(data)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		return out
	}
	mk := goCompressors[c]
	if mk == nil {
		t.Skipf("no Go encoder for %v", c)
	}
	var buf bytes.Buffer
	w, err := mk(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var allCompressions = []Compression{Uncompressed, Gzip, Xz, Zstd, Bzip2, LzmaAlone}

func TestOpenStreamRoundTrip(t *testing.T) {
	tarData := sampleTar(t)
	cpioData := buildCpio([]cpioEntry{{name: "a", mode: sIFREG | 0o644, data: "x"}}, false)
	defer func() { UseHostDecoders = true }()
	for _, c := range allCompressions {
		for _, cli := range []bool{false, true} {
			for _, in := range []struct {
				archive Archive
				data    []byte
			}{{Tar, tarData}, {CpioNewc, cpioData}} {
				for _, host := range []bool{false, true} {
					name := c.String() + "/" + in.archive.String()
					if cli {
						name += "/cli-encoder"
					}
					if host {
						name += "/host-decoder"
					}
					t.Run(name, func(t *testing.T) {
						UseHostDecoders = host
						comp := compressWith(t, c, in.data, cli)
						br, gotC, gotA, release, err := openStream(bytes.NewReader(comp), 1<<20)
						if err != nil {
							t.Fatal(err)
						}
						defer release()
						if gotC != c || gotA != in.archive {
							t.Fatalf("detected %v %v, want %v %v", gotC, gotA, c, in.archive)
						}
						got, err := io.ReadAll(br)
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(got, in.data) {
							t.Fatalf("decompressed %d bytes, want %d", len(got), len(in.data))
						}
					})
				}
			}
		}
	}
}

// A corrupt stream fails with the decoder's message, whichever decoder.
func TestOpenStreamCorrupt(t *testing.T) {
	defer func() { UseHostDecoders = true }()
	data := bytes.Repeat(sampleTar(t), 50)
	for _, c := range []Compression{Gzip, Xz, Zstd, LzmaAlone} {
		for _, host := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/host=%v", c, host), func(t *testing.T) {
				UseHostDecoders = host
				comp := compressWith(t, c, data, false)
				comp = comp[:len(comp)*2/3]
				br, _, _, release, err := openStream(bytes.NewReader(comp), 1<<30)
				if err == nil {
					defer release()
					_, err = io.ReadAll(br)
				}
				if err == nil {
					t.Fatalf("truncated %v stream read without error", c)
				}
			})
		}
	}
}

func TestOpenStreamErrors(t *testing.T) {
	junk := bytes.Repeat([]byte("not an archive "), 100)
	var gz bytes.Buffer
	w, _ := kgzip.NewWriterLevel(&gz, kgzip.BestSpeed)
	w.Write(junk)
	w.Close()
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, errdefs.ErrInvalid},
		{"junk", junk, errdefs.ErrInvalid},
		{"gzip junk", gz.Bytes(), errdefs.ErrInvalid},
		{"corrupt gzip header", []byte{0x1f, 0x8b, 0, 0, 0, 0}, errdefs.ErrInvalid},
		{"odc cpio", append([]byte("070707"), junk...), errdefs.ErrUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, _, err := openStream(bytes.NewReader(tc.in), 1<<20)
			if !errors.Is(err, tc.want) {
				t.Fatalf("openStream: %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOpenStreamLimit(t *testing.T) {
	data := sampleTar(t)
	br, _, _, release, err := openStream(bytes.NewReader(compressWith(t, Gzip, data, false)), int64(len(data)-1))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := io.ReadAll(br); !errors.Is(err, errLayerTooBig) {
		t.Fatalf("reading past the limit: %v, want errLayerTooBig", err)
	}
	// Exactly at the limit is fine.
	br, _, _, release2, err := openStream(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	defer release2()
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("reading exactly the limit: %v", err)
	}
}
