package logs

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// TimestampFormat is how --timestamps prints an entry's time (Docker's
// RFC3339NanoFixed: always nine fractional digits, so columns line up).
const TimestampFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Entry is one stored line (or part of a line).
type Entry struct {
	Log    string    `json:"log"` // the text, with its newline unless partial
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// ReadOptions select what Read returns. The zero value returns nothing
// (Tail 0): set Tail to -1 for everything.
type ReadOptions struct {
	// Follow keeps reading as the log grows, across rotations, until ctx
	// is cancelled or Done reports true and the file is drained.
	Follow bool
	// Tail is how many of the last matching entries to start with, counted
	// across rotated files; -1 (any negative) means all, 0 none.
	Tail int
	// Since and Until, when not zero, keep entries whose time is in
	// [Since, Until]. Reading stops at the first entry after Until.
	Since, Until time.Time
	// Timestamps prefixes each line with its time in TimestampFormat.
	Timestamps bool
	// Stdout and Stderr select the streams; neither means both.
	Stdout, Stderr bool
	// Done, with Follow, reports that nothing more will be written (the
	// container stopped). It is called at most every few hundred
	// milliseconds; nil means follow until ctx is cancelled.
	Done func() bool
}

// Read writes a container's log (the files in dir) to stdout and stderr,
// each entry to the writer of its stream. It returns ctx.Err() when ctx is
// cancelled, and nil when the log is read or, with Follow, when Done
// reports true and the file is drained. A directory without a log is an
// empty log.
func Read(ctx context.Context, dir string, opts ReadOptions, stdout, stderr io.Writer) error {
	// Buffered, one buffer per stream; switching streams flushes the
	// other, so that the order of stdout and stderr lines is kept when
	// both reach the same terminal. Everything is flushed before waiting.
	out, errw := bufio.NewWriter(stdout), bufio.NewWriter(stderr)
	var last *bufio.Writer
	flush := func() error {
		if last == nil {
			return nil
		}
		return last.Flush()
	}
	var ts []byte
	err := readEntries(ctx, dir, opts, func(e Entry) error {
		w := out
		if e.Stream == Stderr {
			w = errw
		}
		if last != w {
			if err := flush(); err != nil {
				return err
			}
			last = w
		}
		if opts.Timestamps {
			ts = e.Time.UTC().AppendFormat(ts[:0], TimestampFormat)
			ts = append(ts, ' ')
			w.Write(ts)
		}
		_, err := w.WriteString(e.Log)
		return err
	}, flush)
	if ferr := flush(); err == nil {
		err = ferr
	}
	return err
}

// ReadEntries is Read for callers that format entries themselves (the
// HTTP API's multiplexed stream): fn gets each selected entry in order,
// and an error from it stops the read and is returned.
func ReadEntries(ctx context.Context, dir string, opts ReadOptions, fn func(Entry) error) error {
	return readEntries(ctx, dir, opts, fn, func() error { return nil })
}

// readEntries is ReadEntries with flush, called whenever it is about to
// wait for more.
func readEntries(ctx context.Context, dir string, opts ReadOptions, fn func(Entry) error, flush func() error) error {
	if !opts.Stdout && !opts.Stderr {
		opts.Stdout, opts.Stderr = true, true
	}
	r := &reader{dir: dir, opts: opts, fn: fn}
	defer r.closeCurrent()
	var w *watcher
	if opts.Follow {
		// Before the first read, so that nothing written after it is
		// missed.
		w = newWatcher(dir)
		defer w.close()
	}
	if err := r.start(); err != nil {
		return err
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.untilHit {
			return nil
		}
		// Decide before draining: what is written before Done reports true
		// is then always read.
		stop := !opts.Follow || r.done()
		if err := r.drain(); err != nil {
			return err
		}
		if r.untilHit {
			return nil
		}
		moved, err := r.advance()
		if err != nil {
			return err
		}
		if moved {
			continue
		}
		if stop {
			return nil
		}
		if err := flush(); err != nil {
			return err
		}
		if err := w.wait(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// reader is one ReadEntries call.
type reader struct {
	dir  string
	opts ReadOptions
	fn   func(Entry) error

	cur      *os.File
	curInfo  fs.FileInfo // identifies cur's inode
	off      int64       // bytes of cur consumed, pending included
	pending  []byte      // an unterminated line at the end of cur
	buf      []byte
	untilHit bool

	lastDone   time.Time
	doneResult bool
}

// chain lists the log files oldest first: container.log.N ... .1, then
// container.log. It globs rather than counting up from .1 because a
// rotation in progress leaves a gap for a moment.
func chain(dir string) []string {
	ents, _ := os.ReadDir(dir)
	type rotated struct {
		n    int
		path string
	}
	var rs []rotated
	live := ""
	for _, e := range ents {
		name := e.Name()
		if name == FileName {
			live = filepath.Join(dir, name)
			continue
		}
		if suffix, ok := strings.CutPrefix(name, FileName+"."); ok {
			if n, err := strconv.Atoi(suffix); err == nil && n > 0 {
				rs = append(rs, rotated{n, filepath.Join(dir, name)})
			}
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].n > rs[j].n })
	out := make([]string, 0, len(rs)+1)
	for _, r := range rs {
		out = append(out, r.path)
	}
	if live != "" {
		out = append(out, live)
	}
	return out
}

// start opens every file at once (so that rotations while the tail is
// found do not move them), finds where the tail begins, and makes that
// file current. The main loop then moves from file to file by advance.
func (r *reader) start() error {
	var files []*os.File
	for _, p := range chain(r.dir) {
		if f, err := os.Open(p); err == nil {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil
	}
	first, off := 0, int64(0)
	var err error
	if r.opts.Tail >= 0 {
		first, off, err = tailStart(files, r.opts.Tail, r.matches)
	}
	for i, f := range files {
		if i != first || err != nil {
			f.Close()
		}
	}
	if err != nil {
		return fmt.Errorf("reading container log: %w", err)
	}
	return r.setCurrent(files[first], off)
}

// setCurrent makes f the file being read, from off.
func (r *reader) setCurrent(f *os.File, off int64) error {
	r.closeCurrent()
	info, err := f.Stat()
	if err == nil {
		_, err = f.Seek(off, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("reading container log: %w", err)
	}
	r.cur, r.curInfo, r.off, r.pending = f, info, off, r.pending[:0]
	return nil
}

func (r *reader) closeCurrent() {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
}

// advance moves to the file after the current one when there is one (the
// live file was rotated, or the current file is an older one), or back to
// the start of the live file when it was truncated (max-file 1). It
// reports whether it moved, that is whether there may be more to read.
func (r *reader) advance() (bool, error) {
	if r.cur != nil {
		live, err := os.Stat(rotatedPath(r.dir, 0))
		if err == nil && os.SameFile(live, r.curInfo) {
			if live.Size() < r.off {
				if _, err := r.cur.Seek(0, io.SeekStart); err != nil {
					return false, fmt.Errorf("reading container log: %w", err)
				}
				r.off, r.pending = 0, r.pending[:0]
				return true, nil
			}
			return false, nil
		}
	}
	// The files after the current one, found by inode: a rotation renames
	// them all, perhaps several times since we last looked. When the
	// current file is gone (rotated out), every file left is newer.
	paths := chain(r.dir)
	infos := make([]fs.FileInfo, len(paths))
	next := 0
	for i, p := range paths {
		infos[i], _ = os.Stat(p)
		if r.cur != nil && infos[i] != nil && os.SameFile(infos[i], r.curInfo) {
			next = i + 1
		}
	}
	for i := next; i < len(paths); i++ {
		if infos[i] == nil {
			continue // removed since the listing
		}
		f, err := os.Open(paths[i])
		if err != nil {
			continue
		}
		if st, err := f.Stat(); err != nil || !os.SameFile(st, infos[i]) {
			// Renamed under us by another rotation: look again.
			f.Close()
			return true, nil
		}
		if err := r.setCurrent(f, 0); err != nil {
			return false, err
		}
		return true, nil
	}
	return false, nil
}

// drain reads the current file to its end, passing on every complete
// line; an unterminated one waits in pending for the rest.
func (r *reader) drain() error {
	if r.cur == nil {
		return nil
	}
	if r.buf == nil {
		r.buf = make([]byte, 64<<10)
	}
	for {
		n, err := r.cur.Read(r.buf)
		if n > 0 {
			r.off += int64(n)
			data := r.buf[:n]
			if len(r.pending) > 0 {
				r.pending = append(r.pending, data...)
				data = r.pending
			}
			for {
				i := bytes.IndexByte(data, '\n')
				if i < 0 {
					break
				}
				if err := r.emit(data[:i]); err != nil {
					return err
				}
				if r.untilHit {
					return nil
				}
				data = data[i+1:]
			}
			r.pending = append(r.pending[:0], data...)
		}
		if n == 0 || errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading container log: %w", err)
		}
	}
}

// decode parses one line; a damaged one (a crash in the middle of a
// write) is skipped rather than ending the read.
func decode(line []byte) (Entry, bool) {
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return Entry{}, false
	}
	return e, true
}

// selected applies the stream and time filters; after reports an entry
// past Until.
func (r *reader) selected(e Entry) (ok, after bool) {
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		return false, true
	}
	if e.Stream == Stderr && !r.opts.Stderr || e.Stream != Stderr && !r.opts.Stdout {
		return false, false
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return false, false
	}
	return true, false
}

// matches is the tail's predicate: the lines that would be shown.
func (r *reader) matches(line []byte) bool {
	e, ok := decode(bytes.TrimSuffix(line, []byte("\n")))
	if !ok {
		return false
	}
	ok, _ = r.selected(e)
	return ok
}

func (r *reader) emit(line []byte) error {
	e, ok := decode(line)
	if !ok {
		return nil
	}
	ok, after := r.selected(e)
	if after {
		r.untilHit = true
	}
	if !ok {
		return nil
	}
	return r.fn(e)
}

// done reports whether following should end: Until has passed, or Done
// says so. Done is asked at most every 200 ms, since it may read the
// container's record.
func (r *reader) done() bool {
	if !r.opts.Until.IsZero() && time.Now().After(r.opts.Until) {
		return true
	}
	if r.opts.Done == nil {
		return false
	}
	if r.doneResult || time.Since(r.lastDone) < 200*time.Millisecond {
		return r.doneResult
	}
	r.doneResult, r.lastDone = r.opts.Done(), time.Now()
	return r.doneResult
}

// tailStart returns the file index and offset at which the last n entries
// that match begin, reading the files backwards.
func tailStart(files []*os.File, n int, match func([]byte) bool) (int, int64, error) {
	last := len(files) - 1
	if n == 0 {
		st, err := files[last].Stat()
		if err != nil {
			return 0, 0, err
		}
		return last, st.Size(), nil
	}
	count := 0
	for i := last; i >= 0; i-- {
		st, err := files[i].Stat()
		if err != nil {
			return 0, 0, err
		}
		off, found, err := scanBack(files[i], st.Size(), n-count, match, &count)
		if err != nil {
			return 0, 0, err
		}
		if found {
			return i, off, nil
		}
	}
	return 0, 0, nil
}

// scanBack reads f's first size bytes backwards, a chunk at a time,
// counting complete lines that match into *count; it returns the offset of
// the line that makes want more, or found false when f has fewer.
func scanBack(f *os.File, size int64, want int, match func([]byte) bool, count *int) (int64, bool, error) {
	const chunk = 64 << 10
	need := *count + want
	var acc []byte // bytes [pos, lineEnd), or [pos, size) before lineEnd is known
	lineEnd := int64(-1)
	pos := size
	for pos > 0 {
		c := min(int64(chunk), pos)
		pos -= c
		b := make([]byte, c, int(c)+len(acc))
		if _, err := f.ReadAt(b, pos); err != nil && !errors.Is(err, io.EOF) {
			return 0, false, err
		}
		acc = append(b, acc...)
		for i := int(c) - 1; i >= 0; i-- {
			if acc[i] != '\n' {
				continue
			}
			if lineEnd >= 0 && match(acc[i+1:]) {
				*count++
				if *count == need {
					return pos + int64(i) + 1, true, nil
				}
			}
			// Bytes after the last newline are a line still being
			// written: they are read forwards later.
			lineEnd = pos + int64(i) + 1
			acc = acc[:i+1]
		}
	}
	if lineEnd > 0 && match(acc) {
		*count++
		if *count == need {
			return 0, true, nil
		}
	}
	return 0, false, nil
}

// sleep waits for d or until ctx is cancelled.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
