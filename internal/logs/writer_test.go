package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/cfs-org/cfs/internal/errdefs"
)

var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// newTestWriter returns a writer whose clock starts at t0 and advances one
// second per entry.
func newTestWriter(t *testing.T, dir string, opts Options) *Writer {
	t.Helper()
	w, err := NewWriter(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	w.now = func() time.Time { n++; return t0.Add(time.Duration(n-1) * time.Second) }
	t.Cleanup(func() { w.Close() })
	return w
}

// rawEntries decodes one file.
func rawEntries(t *testing.T, path string) []Entry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Entry
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: line %q: %v", path, sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func writeString(t *testing.T, w interface{ Write([]byte) (int, error) }, s string) {
	t.Helper()
	if n, err := w.Write([]byte(s)); err != nil || n != len(s) {
		t.Fatalf("write %q: %d, %v", s, n, err)
	}
}

func TestWriterFormat(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, Options{})
	out, errs := w.Stream(Stdout), w.Stream(Stderr)
	writeString(t, out, "hello\nwor")
	writeString(t, errs, "oops\n")
	writeString(t, out, "ld\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, FileName))
	want := `{"log":"hello\n","stream":"stdout","time":"2024-05-01T12:00:00Z"}
{"log":"oops\n","stream":"stderr","time":"2024-05-01T12:00:01Z"}
{"log":"world\n","stream":"stdout","time":"2024-05-01T12:00:02Z"}
`
	if string(b) != want {
		t.Errorf("file:\n%s\nwant:\n%s", b, want)
	}
	if _, err := out.Write([]byte("late\n")); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("write after Close: %v", err)
	}
}

func TestWriterEscaping(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, Options{})
	s := w.Stream(Stdout)
	line := "quote\" back\\ tab\t cr\r bell\x07 del\x7f <&> é 日本 \u2028 bad\xff\xfe end\n"
	writeString(t, s, line)
	w.Close()
	got := rawEntries(t, filepath.Join(dir, FileName))
	want := strings.ToValidUTF8(line, "\ufffd\ufffd") // two invalid bytes, two replacements
	if len(got) != 1 || got[0].Log != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestWriterPartialLines(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, Options{})
	s := w.Stream(Stdout)
	long := strings.Repeat("a", 2*MaxEntrySize+100)
	// Written in odd pieces, as a pipe delivers them.
	data := long + "\nshort\n" + strings.Repeat("b", MaxEntrySize-1) + "é" + "tail"
	for i := 0; i < len(data); i += 1000 {
		writeString(t, s, data[i:min(i+1000, len(data))])
	}
	s.Close() // flushes "tail" as a partial entry
	got := rawEntries(t, filepath.Join(dir, FileName))
	var lens []int
	for _, e := range got {
		lens = append(lens, len(e.Log))
		if !utf8.ValidString(e.Log) {
			t.Errorf("entry is not valid UTF-8 (a rune was cut): %q", e.Log[len(e.Log)-4:])
		}
	}
	wantLens := []int{MaxEntrySize, MaxEntrySize, 101, 6, MaxEntrySize - 1, 2 + 4}
	if fmt.Sprint(lens) != fmt.Sprint(wantLens) {
		t.Fatalf("entry lengths %v, want %v", lens, wantLens)
	}
	var all strings.Builder
	for _, e := range got {
		all.WriteString(e.Log)
	}
	if all.String() != data {
		t.Error("entries do not add up to the input")
	}
	// Read gives the text back exactly, partial entries joined.
	var stdout bytes.Buffer
	if err := Read(context.Background(), dir, ReadOptions{Tail: -1}, &stdout, nil); err != nil {
		t.Fatal(err)
	}
	if stdout.String() != data {
		t.Error("Read does not give back the input")
	}
}

func TestWriterConcurrent(t *testing.T) {
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{MaxSize: 4096, MaxFile: 1000})
	if err != nil {
		t.Fatal(err)
	}
	const writers, lines = 4, 300
	var wg sync.WaitGroup
	for _, name := range []string{Stdout, Stderr} {
		s := w.Stream(name)
		for g := 0; g < writers; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < lines; i++ {
					// Whole lines per Write: several goroutines share one
					// stream, so a line split over writes could interleave.
					fmt.Fprintf(s, "%s %d %d %s\n", name, g, i, strings.Repeat("x", i%50))
				}
			}()
		}
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := Read(context.Background(), dir, ReadOptions{Tail: -1}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	for name, buf := range map[string]*bytes.Buffer{Stdout: &stdout, Stderr: &stderr} {
		seen := map[string]bool{}
		next := make([]int, writers) // each goroutine's lines stay in order
		for _, l := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
			var s string
			var g, i int
			if _, err := fmt.Sscanf(l, "%s %d %d", &s, &g, &i); err != nil || s != name {
				t.Fatalf("%s: bad line %q", name, l)
			}
			if l != fmt.Sprintf("%s %d %d %s", name, g, i, strings.Repeat("x", i%50)) || seen[l] {
				t.Fatalf("%s: mangled or repeated line %q", name, l)
			}
			seen[l] = true
			if i != next[g] {
				t.Fatalf("%s: writer %d: line %d after %d", name, g, i, next[g]-1)
			}
			next[g]++
		}
		if len(seen) != writers*lines {
			t.Errorf("%s: %d lines, want %d", name, len(seen), writers*lines)
		}
	}
	if files := chain(dir); len(files) < 10 {
		t.Errorf("expected many rotations, have %d files", len(files))
	}
}

func TestWriterRotation(t *testing.T) {
	// Each entry is exactly 70 bytes: {"log":"line NN\n","stream":"stdout","time":"2024-05-01T12:00:NNZ"}\n
	entry := len(appendEntry(nil, Stdout, []byte("line 00\n"), t0.Add(10*time.Second)))
	for _, tc := range []struct {
		name             string
		maxSize          int64
		maxFile          int
		wantFiles        int
		wantPerFile      int // entries in each full file
		wantKeptFromLine int
	}{
		{"exactly two entries fit", int64(2 * entry), 3, 3, 2, 14},
		{"one byte short of two", int64(2*entry - 1), 3, 3, 1, 17},
		{"entry larger than max-size", 10, 4, 4, 1, 16},
		{"max-file 1 truncates", int64(3 * entry), 1, 1, 3, 18},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w := newTestWriter(t, dir, Options{MaxSize: tc.maxSize, MaxFile: tc.maxFile})
			w.now = func() time.Time { return t0.Add(10 * time.Second) } // fixed size entries
			s := w.Stream(Stdout)
			for i := 0; i < 20; i++ {
				fmt.Fprintf(s, "line %02d\n", i)
			}
			w.Close()
			files := chain(dir)
			if len(files) != tc.wantFiles {
				t.Fatalf("files %v, want %d", files, tc.wantFiles)
			}
			for i, f := range files {
				st, _ := os.Stat(f)
				if tc.maxSize >= int64(entry) && st.Size() > tc.maxSize {
					t.Errorf("%s: %d bytes > max-size %d", f, st.Size(), tc.maxSize)
				}
				if n := len(rawEntries(t, f)); i < len(files)-1 && n != tc.wantPerFile {
					t.Errorf("%s: %d entries, want %d", f, n, tc.wantPerFile)
				}
			}
			var out bytes.Buffer
			Read(context.Background(), dir, ReadOptions{Tail: -1}, &out, nil)
			var want strings.Builder
			for i := tc.wantKeptFromLine; i < 20; i++ {
				fmt.Fprintf(&want, "line %02d\n", i)
			}
			if out.String() != want.String() {
				t.Errorf("read:\n%s\nwant:\n%s", out.String(), want.String())
			}
		})
	}
}

func TestWriterReopen(t *testing.T) {
	dir := t.TempDir()
	// Left by an earlier run with a larger max-file.
	for i := 1; i <= 4; i++ {
		os.WriteFile(rotatedPath(dir, i), []byte(fmt.Sprintf(`{"log":"old %d\n","stream":"stdout","time":"2020-01-01T00:00:0%dZ"}`+"\n", i, 5-i)), 0o640)
	}
	os.WriteFile(rotatedPath(dir, 0), []byte(`{"log":"live\n","stream":"stdout","time":"2020-01-01T00:00:09Z"}`+"\n"), 0o640)
	w := newTestWriter(t, dir, Options{MaxSize: 1 << 20, MaxFile: 3})
	writeString(t, w.Stream(Stdout), "new\n")
	w.Close()
	var out bytes.Buffer
	Read(context.Background(), dir, ReadOptions{Tail: -1}, &out, nil)
	if out.String() != "old 2\nold 1\nlive\nnew\n" {
		t.Errorf("after reopening with max-file 3: %q", out.String())
	}
}

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want Options
		err  string
	}{
		{nil, Options{DefaultMaxSize, DefaultMaxFile}, ""},
		{[]string{"max-size=10m,max-file=3"}, Options{10 << 20, 3}, ""},
		{[]string{"max-size=500k", "max-file=1"}, Options{500 << 10, 1}, ""},
		{[]string{"max-size=1.5MB"}, Options{3 << 19, DefaultMaxFile}, ""},
		{[]string{"max-size=2g"}, Options{2 << 30, DefaultMaxFile}, ""},
		{[]string{"max-size=1024"}, Options{1024, DefaultMaxFile}, ""},
		{[]string{"max-size=-1"}, Options{0, DefaultMaxFile}, ""},
		{[]string{"max-size=-1,max-file=1"}, Options{0, 1}, ""},
		{[]string{"max-size=-1,max-file=3"}, Options{}, "max-file=3"},
		{[]string{"max-size=ten"}, Options{}, "max-size=ten"},
		{[]string{"max-size=10x"}, Options{}, "max-size=10x"},
		{[]string{"max-size=0"}, Options{}, "max-size=0"},
		{[]string{"max-file=0"}, Options{}, "max-file=0"},
		{[]string{"max-file=two"}, Options{}, "max-file=two"},
		{[]string{"compress=true"}, Options{}, `"compress"`},
		{[]string{"max-size"}, Options{}, `"max-size"`},
	} {
		got, err := ParseOptions(tc.args)
		if tc.err != "" {
			if err == nil || !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseOptions(%q) = %v, want ErrInvalid naming %s", tc.args, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseOptions(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}
