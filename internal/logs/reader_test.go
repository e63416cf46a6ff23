package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lines returns "prefix N\n" for N in [from, to).
func lines(prefix string, from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, "%s %d\n", prefix, i)
	}
	return b.String()
}

func read(t *testing.T, dir string, o ReadOptions) (stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	if err := Read(context.Background(), dir, o, &out, &errb); err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String()
}

// rotatedLog writes 30 stdout lines and one stderr line after every
// fifth, in files of about four entries: eight files.
func rotatedLog(t *testing.T) string {
	dir := t.TempDir()
	w := newTestWriter(t, dir, Options{MaxSize: 4 * 75, MaxFile: 100})
	out, errs := w.Stream(Stdout), w.Stream(Stderr)
	for i := 0; i < 30; i++ {
		fmt.Fprintf(out, "out %d\n", i)
		if i%5 == 4 {
			fmt.Fprintf(errs, "err %d\n", i)
		}
	}
	w.Close()
	if n := len(chain(dir)); n < 5 {
		t.Fatalf("only %d files", n)
	}
	return dir
}

func TestReadAllAndStreams(t *testing.T) {
	dir := rotatedLog(t)
	out, errs := read(t, dir, ReadOptions{Tail: -1})
	if out != lines("out", 0, 30) || errs != "err 4\nerr 9\nerr 14\nerr 19\nerr 24\nerr 29\n" {
		t.Errorf("stdout %q\nstderr %q", out, errs)
	}
	if out, errs := read(t, dir, ReadOptions{Tail: -1, Stderr: true}); out != "" || !strings.HasPrefix(errs, "err 4\n") {
		t.Errorf("stderr only: stdout %q, stderr %q", out, errs)
	}
	if out, errs := read(t, dir, ReadOptions{Tail: 0}); out != "" || errs != "" {
		t.Errorf("tail 0: %q %q", out, errs)
	}
	if out, _ := read(t, t.TempDir(), ReadOptions{Tail: -1}); out != "" {
		t.Errorf("no log: %q", out)
	}
}

func TestReadTail(t *testing.T) {
	dir := rotatedLog(t)
	for _, tc := range []struct {
		name      string
		o         ReadOptions
		out, errs string
	}{
		{"last entries", ReadOptions{Tail: 3}, "out 28\nout 29\n", "err 29\n"},
		{"across files", ReadOptions{Tail: 13}, lines("out", 20, 30), "err 19\nerr 24\nerr 29\n"},
		{"stdout only counts stdout", ReadOptions{Tail: 12, Stdout: true}, lines("out", 18, 30), ""},
		{"stderr only across many files", ReadOptions{Tail: 4, Stderr: true}, "", "err 14\nerr 19\nerr 24\nerr 29\n"},
		{"more than there is", ReadOptions{Tail: 1000}, lines("out", 0, 30), "err 4\nerr 9\nerr 14\nerr 19\nerr 24\nerr 29\n"},
		{"exactly all", ReadOptions{Tail: 36}, lines("out", 0, 30), "err 4\nerr 9\nerr 14\nerr 19\nerr 24\nerr 29\n"},
		{"all but the first", ReadOptions{Tail: 35}, lines("out", 1, 30), "err 4\nerr 9\nerr 14\nerr 19\nerr 24\nerr 29\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errs := read(t, dir, tc.o)
			if out != tc.out || errs != tc.errs {
				t.Errorf("stdout %q\nwant   %q\nstderr %q\nwant   %q", out, tc.out, errs, tc.errs)
			}
		})
	}
}

func TestReadTailLongLines(t *testing.T) {
	// Lines longer than the backwards scan's chunk.
	dir := t.TempDir()
	w := newTestWriter(t, dir, Options{})
	s := w.Stream(Stdout)
	var want []string
	for i := 0; i < 12; i++ {
		l := fmt.Sprintf("%d %s\n", i, strings.Repeat("\x01", 15000)) // 6 bytes each in JSON
		want = append(want, l)
		writeString(t, s, l)
	}
	w.Close()
	if out, _ := read(t, dir, ReadOptions{Tail: 5}); out != strings.Join(want[7:], "") {
		t.Errorf("tail 5 of long lines: got %d bytes", len(out))
	}
}

func TestReadSinceUntilTimestamps(t *testing.T) {
	dir := rotatedLog(t) // entry k (0-based, both streams) is at t0 + k s
	at := func(k int) time.Time { return t0.Add(time.Duration(k) * time.Second) }
	// Entries: out 0..4 are 0..4, err 4 is 5, out 5 is 6, ...
	out, errs := read(t, dir, ReadOptions{Tail: -1, Since: at(6), Until: at(12)})
	if out != lines("out", 5, 10)+"out 10\n" || errs != "err 9\n" {
		t.Errorf("since/until: %q %q", out, errs)
	}
	out, _ = read(t, dir, ReadOptions{Tail: 2, Until: at(12), Stdout: true})
	if out != "out 9\nout 10\n" {
		t.Errorf("tail with until: %q", out)
	}
	out, _ = read(t, dir, ReadOptions{Tail: 3, Since: at(33), Timestamps: true})
	want := "2024-05-01T12:00:33.000000000Z out 28\n2024-05-01T12:00:34.000000000Z out 29\n"
	if out != want {
		t.Errorf("timestamps:\n%s\nwant\n%s", out, want)
	}
	if out, errs := read(t, dir, ReadOptions{Tail: -1, Since: at(100)}); out+errs != "" {
		t.Errorf("since after the end: %q", out+errs)
	}
}

// syncBuffer is a bytes.Buffer for a reader goroutine and a test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollowAcrossRotations(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"rotation", Options{MaxSize: 500, MaxFile: 3}},
		{"truncation", Options{MaxSize: 2000, MaxFile: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			w, err := NewWriter(dir, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			s := w.Stream(Stdout)
			fmt.Fprint(s, lines("before", 0, 3))
			var stopped atomic.Bool
			var out syncBuffer
			errc := make(chan error, 1)
			go func() {
				errc <- Read(context.Background(), dir, ReadOptions{Follow: true, Tail: 2, Done: stopped.Load}, &out, &out)
			}()
			waitUntil(t, "the tail", func() bool { return out.String() == "before 1\nbefore 2\n" })
			// Slowly enough for the follower to keep up (a rotation while
			// the follower sleeps can drop a file with max-file 3, and a
			// truncation can drop a whole file's worth, as with Docker).
			var want strings.Builder
			want.WriteString("before 1\nbefore 2\n")
			for i := 0; i < 60; i++ {
				l := fmt.Sprintf("line %d\n", i)
				want.WriteString(l)
				fmt.Fprint(s, l)
				waitUntil(t, l, func() bool { return strings.HasSuffix(out.String(), l) })
			}
			// The container stops: what it wrote last is still read.
			fmt.Fprint(s, "last words\n")
			want.WriteString("last words\n")
			w.Close()
			stopped.Store(true)
			select {
			case err := <-errc:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("follow did not stop after Done")
			}
			if out.String() != want.String() {
				t.Errorf("followed:\n%s\nwant:\n%s", out.String(), want.String())
			}
			if tc.opts.MaxFile > 1 && len(chain(dir)) != tc.opts.MaxFile {
				t.Errorf("rotation did not happen: %v", chain(dir))
			}
		})
	}
}

func TestFollowBurstAcrossRotations(t *testing.T) {
	// The writer rotates several times while the follower reads: with
	// enough files kept, nothing is lost or repeated.
	dir := t.TempDir()
	w, err := NewWriter(dir, Options{MaxSize: 4000, MaxFile: 50})
	if err != nil {
		t.Fatal(err)
	}
	var stopped atomic.Bool
	var out syncBuffer
	errc := make(chan error, 1)
	go func() {
		errc <- Read(context.Background(), dir, ReadOptions{Follow: true, Tail: -1, Done: stopped.Load}, &out, &out)
	}()
	s := w.Stream(Stdout)
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(s, "line %d\n", i)
		if i%50 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	w.Close()
	stopped.Store(true)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != lines("line", 0, 2000) {
		t.Errorf("lost or repeated lines: %d bytes, want %d", len(got), len(lines("line", 0, 2000)))
	}
}

func TestFollowWaitsForFileAndCancels(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	errc := make(chan error, 1)
	go func() { errc <- Read(ctx, dir, ReadOptions{Follow: true, Tail: -1}, &out, &out) }()
	time.Sleep(50 * time.Millisecond)
	w, err := NewWriter(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(w.Stream(Stderr), "hello\n")
	waitUntil(t, "the first line", func() bool { return out.String() == "hello\n" })
	w.Close()
	start := time.Now()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Read after cancel: %v", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("cancel took %v", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after cancel")
	}
}

func TestFollowUntil(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, Options{})
	fmt.Fprint(w.Stream(Stdout), lines("l", 0, 5))
	// Until already passed: no waiting, however long the follow.
	done := make(chan string)
	go func() {
		var out bytes.Buffer
		Read(context.Background(), dir, ReadOptions{Follow: true, Tail: -1, Until: t0.Add(2 * time.Second)}, &out, &out)
		done <- out.String()
	}()
	select {
	case got := <-done:
		if got != lines("l", 0, 3) {
			t.Errorf("until: %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow with a past --until did not stop")
	}
}

func TestReadSkipsDamagedLines(t *testing.T) {
	dir := t.TempDir()
	data := `{"log":"one\n","stream":"stdout","time":"2024-05-01T12:00:00Z"}
{"log":"tw` + "\n" + `{"log":"three\n","stream":"stdout","time":"2024-05-01T12:00:02Z"}
`
	os.WriteFile(rotatedPath(dir, 0), []byte(data), 0o640)
	if out, _ := read(t, dir, ReadOptions{Tail: -1}); out != "one\nthree\n" {
		t.Errorf("got %q", out)
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	local := func(s string) time.Time {
		t, _ := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
		return t
	}
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"10m", now.Add(-10 * time.Minute), false},
		{"1h30m", now.Add(-90 * time.Minute), false},
		{"1714564800", time.Unix(1714564800, 0), false},
		{"1714564800.5", time.Unix(1714564800, 5e8), false},
		{"1714564800.000000001", time.Unix(1714564800, 1), false},
		{"0", time.Unix(0, 0), false},
		{"2024-05-01T10:00:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), false},
		{"2024-05-01T10:00:00.25Z", time.Date(2024, 5, 1, 10, 0, 0, 25e7, time.UTC), false},
		{"2024-05-01T10:00:00+02:00", time.Date(2024, 5, 1, 8, 0, 0, 0, time.UTC), false},
		{"2024-05-01T10:00:00-02:00", time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC), false},
		{"2024-05-01T10:00Z", time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), false},
		{"2024-05-01T10:00:00", local("2024-05-01T10:00:00"), false},
		{"2024-05-01T10:00", local("2024-05-01T10:00:00"), false},
		{"2024-05-01T10", local("2024-05-01T10:00:00"), false},
		{"2024-05-01", local("2024-05-01T00:00:00"), false},
		{"2024-13-01", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"12abc", time.Time{}, true},
	} {
		got, err := ParseTime(tc.in, now)
		if tc.bad != (err != nil) || !got.Equal(tc.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}
