package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Writer appends entries to a container's log and rotates it. It is safe
// for concurrent use: the stdout and stderr copiers each write through
// their own Stream, and entries are serialized here, one write(2) each, so
// a reader never sees two entries interleaved.
type Writer struct {
	dir  string
	opts Options
	now  func() time.Time // a seam for tests

	mu      sync.Mutex // guards everything below
	f       *os.File
	size    int64
	rotated int    // the highest rotated file's number
	buf     []byte // the entry being encoded
	err     error  // first write or rotation error
	closed  bool
	streams []*stream
}

// NewWriter opens (creating if needed) the log in dir, which must exist,
// for appending. Rotated files beyond opts.MaxFile, left by a larger
// max-file before, are removed.
func NewWriter(dir string, opts Options) (*Writer, error) {
	if opts.MaxFile < 1 {
		opts.MaxFile = 1
	}
	if opts.MaxSize < 0 {
		opts.MaxSize = 0
	}
	w := &Writer{dir: dir, opts: opts, now: time.Now}
	f, size, err := w.open(os.O_APPEND)
	if err != nil {
		return nil, err
	}
	w.f, w.size = f, size
	for i := opts.MaxFile; ; i++ {
		if err := os.Remove(w.path(i)); err != nil {
			break
		}
	}
	for i := opts.MaxFile - 1; i >= 1; i-- {
		if _, err := os.Lstat(w.path(i)); err == nil {
			w.rotated = i
			break
		}
	}
	return w, nil
}

// path is the live file for i == 0 and rotated file i otherwise.
func (w *Writer) path(i int) string { return rotatedPath(w.dir, i) }

func rotatedPath(dir string, i int) string {
	if i == 0 {
		return filepath.Join(dir, FileName)
	}
	return filepath.Join(dir, FileName+"."+strconv.Itoa(i))
}

func (w *Writer) open(flag int) (*os.File, int64, error) {
	f, err := os.OpenFile(w.path(0), os.O_WRONLY|os.O_CREATE|flag, 0o640)
	if err != nil {
		return nil, 0, fmt.Errorf("opening container log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("opening container log: %w", err)
	}
	return f, st.Size(), nil
}

// Stream returns the writer for one stream (Stdout or Stderr): it splits
// what is written into lines and stores each as a timestamped entry. Its
// Write fails only after Close; a disk error drops the entry (the
// container must not block on its log) and is kept for Err. Close flushes
// an unterminated last line as a partial entry. A Stream is safe for
// concurrent use, though one copier per stream is the normal case.
func (w *Writer) Stream(name string) io.WriteCloser {
	s := &stream{w: w, name: name}
	w.mu.Lock()
	w.streams = append(w.streams, s)
	w.mu.Unlock()
	return s
}

// Err returns the first error met while writing or rotating, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close flushes every stream's unterminated line and closes the file.
// Writes after Close fail with fs.ErrClosed.
func (w *Writer) Close() error {
	w.mu.Lock()
	streams := w.streams
	w.streams = nil
	w.mu.Unlock()
	// Streams take their own lock, then w.mu: never the other way round.
	for _, s := range streams {
		s.Close()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	if err := w.f.Close(); err != nil && w.err == nil {
		w.err = err
	}
	return w.err
}

// write stores one entry. text is at most MaxEntrySize bytes and ends with
// a newline unless the entry is partial.
func (w *Writer) write(streamName string, text []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fs.ErrClosed
	}
	w.buf = appendEntry(w.buf[:0], streamName, text, w.now())
	if w.opts.MaxSize > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.opts.MaxSize {
		if err := w.rotate(); err != nil && w.err == nil {
			w.err = err
		}
	}
	n, err := w.f.Write(w.buf)
	w.size += int64(n)
	if err != nil && w.err == nil {
		w.err = fmt.Errorf("writing container log: %w", err)
	}
	return nil
}

// rotate shifts the files by one and starts an empty live file; with
// MaxFile 1 it truncates the live file instead. Readers following the old
// file notice by its inode (or, after a truncation, by its size). Called
// with w.mu held.
func (w *Writer) rotate() error {
	if w.opts.MaxFile <= 1 {
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("truncating container log: %w", err)
		}
		w.size = 0
		return nil
	}
	if w.rotated == w.opts.MaxFile-1 {
		if err := os.Remove(w.path(w.rotated)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating container log: %w", err)
		}
		w.rotated--
	}
	for i := w.rotated; i >= 1; i-- {
		if err := os.Rename(w.path(i), w.path(i+1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotating container log: %w", err)
		}
	}
	w.rotated++
	if err := os.Rename(w.path(0), w.path(1)); err != nil {
		return fmt.Errorf("rotating container log: %w", err)
	}
	f, _, err := w.open(os.O_APPEND | os.O_TRUNC)
	if err != nil {
		return err // keep appending to the renamed file: nothing is lost
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// stream is one of a Writer's inputs.
type stream struct {
	w    *Writer
	name string

	mu     sync.Mutex
	buf    []byte // an unterminated line
	closed bool
}

// Write implements io.Writer.
func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fs.ErrClosed
	}
	data := p
	if len(s.buf) > 0 {
		s.buf = append(s.buf, p...)
		data = s.buf
	}
	for len(data) > 0 {
		end := bytes.IndexByte(data[:min(len(data), MaxEntrySize)], '\n') + 1
		if end == 0 {
			if len(data) < MaxEntrySize {
				break // wait for the rest of the line
			}
			end = splitPoint(data[:MaxEntrySize])
		}
		if err := s.w.write(s.name, data[:end]); err != nil {
			return 0, err
		}
		data = data[end:]
	}
	// Keep the unterminated rest; copy it down so s.buf does not grow.
	s.buf = append(s.buf[:0], data...)
	return len(p), nil
}

// Close implements io.Closer: it stores an unterminated last line.
func (s *stream) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if len(s.buf) == 0 {
		return nil
	}
	err := s.w.write(s.name, s.buf)
	s.buf = nil
	if errors.Is(err, fs.ErrClosed) {
		return nil // the Writer closed first and flushed us
	}
	return err
}

// splitPoint is where to cut a full partial entry: before a UTF-8
// sequence that the cut would break, so that each entry stays valid text.
func splitPoint(b []byte) int {
	for back := 1; back <= utf8.UTFMax && back < len(b); back++ {
		c := b[len(b)-back]
		if c < 0x80 {
			return len(b) // ASCII: nothing is broken
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-back:]) {
				return len(b) - back // incomplete sequence: cut before it
			}
			return len(b)
		}
	}
	return len(b)
}

// appendEntry appends one JSON line. Hand-written rather than
// encoding/json: it runs for every line a container prints, and this way
// it allocates nothing.
func appendEntry(b []byte, streamName string, text []byte, t time.Time) []byte {
	b = append(b, `{"log":`...)
	b = appendJSONString(b, text)
	b = append(b, `,"stream":`...)
	b = appendJSONString(b, []byte(streamName))
	b = append(b, `,"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, "\"}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString quotes s as a JSON string; invalid UTF-8 becomes U+FFFD
// as encoding/json does.
func appendJSONString(b, s []byte) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20 || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
