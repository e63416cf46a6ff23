package image

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestReadahead(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), readaheadSize/4) // 4 buffers' worth
	released := make(chan struct{})
	ra := newReadahead(iotest.HalfReader(bytes.NewReader(data)), func() { close(released) })
	got, err := io.ReadAll(ra)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes, %v; want %d", len(got), err, len(data))
	}
	<-released // the decoder is released by the goroutine once it ends

	// Data before an error comes first, then the error, as it was.
	boom := errors.New("boom")
	ra = newReadahead(io.MultiReader(bytes.NewReader([]byte("abc")), iotest.ErrReader(boom)), func() {})
	got, err = io.ReadAll(ra)
	if string(got) != "abc" || !errors.Is(err, boom) {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := ra.Read(make([]byte, 1)); !errors.Is(err, boom) {
		t.Errorf("error not sticky: %v", err)
	}

	// Closing early stops the goroutine, which releases the decoder.
	released = make(chan struct{})
	ra = newReadahead(bytes.NewReader(data), func() { close(released) })
	ra.Read(make([]byte, 10))
	ra.Close()
	<-released
}
