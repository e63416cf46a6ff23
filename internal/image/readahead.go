package image

import (
	"io"
	"sync"
)

// readahead runs a decoder in its own goroutine, a few buffers ahead of
// the reader, so decompression (most of a gzip layer's CPU time) overlaps
// the unpacker's system calls: on two cores that is what makes unpacking
// faster than `tar -xzf`, whose gzip is a separate process too.
type readahead struct {
	ch    chan raChunk
	free  chan []byte
	stop  chan struct{}
	once  sync.Once
	cur   []byte
	owned []byte
	err   error
}

type raChunk struct {
	buf []byte
	n   int
	err error
}

const (
	readaheadSize  = 256 << 10
	readaheadCount = 6
)

// newReadahead reads r in a goroutine that owns it: release (the
// decoder's) runs there once reading stops, never concurrently with a
// Read of r. Close stops the goroutine without waiting for it.
func newReadahead(r io.Reader, release func()) *readahead {
	ra := &readahead{
		ch:   make(chan raChunk, readaheadCount),
		free: make(chan []byte, readaheadCount),
		stop: make(chan struct{}),
	}
	for i := 0; i < readaheadCount; i++ {
		ra.free <- make([]byte, readaheadSize)
	}
	go ra.fill(r, release)
	return ra
}

func (ra *readahead) fill(r io.Reader, release func()) {
	defer release()
	for {
		var buf []byte
		select {
		case buf = <-ra.free:
		case <-ra.stop:
			return
		}
		// Fill the buffer, keeping the decoder's error as it is.
		n := 0
		var err error
		for n < len(buf) && err == nil {
			var m int
			m, err = r.Read(buf[n:])
			n += m
		}
		select {
		case ra.ch <- raChunk{buf: buf, n: n, err: err}:
		case <-ra.stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (ra *readahead) Read(p []byte) (int, error) {
	for len(ra.cur) == 0 {
		if ra.owned != nil {
			ra.free <- ra.owned // never blocks: free holds every buffer
			ra.owned = nil
		}
		if ra.err != nil {
			return 0, ra.err
		}
		c := <-ra.ch
		ra.owned, ra.cur, ra.err = c.buf, c.buf[:c.n], c.err
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the goroutine; it returns at once.
func (ra *readahead) Close() {
	ra.once.Do(func() { close(ra.stop) })
}
