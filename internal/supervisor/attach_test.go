package supervisor

import (
	"encoding/binary"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketPair returns both ends of a unix stream socket.
func socketPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	conn := func(fd int) net.Conn {
		f := os.NewFile(uintptr(fd), "sock")
		defer f.Close()
		c, err := net.FileConn(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return conn(fds[0]), conn(fds[1])
}

type frame struct {
	typ     byte
	payload string
}

// readAll reads frames until the server closes its side.
func readAll(t *testing.T, c net.Conn) []frame {
	t.Helper()
	var out []frame
	var buf []byte
	for {
		typ, p, b, err := ReadFrame(c, buf)
		buf = b
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, frame{typ, string(p)})
	}
}

func TestHubFanOutAndExit(t *testing.T) {
	h := NewHub()
	var peers []net.Conn
	for i := 0; i < 2; i++ {
		s, c := socketPair(t)
		cl, err := h.join(s, false, false)
		if err != nil {
			t.Fatal(err)
		}
		go cl.serve()
		peers = append(peers, c)
	}
	h.Output(FrameStdout, []byte("out"))
	h.Output(FrameStderr, []byte("err"))
	h.Close(7)
	for i, c := range peers {
		got := readAll(t, c)
		want := []frame{{FrameStdout, "out"}, {FrameStderr, "err"}, {FrameExit, "\x00\x00\x00\x07"}}
		if len(got) != len(want) {
			t.Fatalf("client %d got %q, want %q", i, got, want)
		}
		for j := range want {
			if got[j] != want[j] {
				t.Errorf("client %d frame %d: %q, want %q", i, j, got[j], want[j])
			}
		}
	}
	if _, err := h.join(nil, false, false); err == nil {
		t.Error("join after Close succeeded")
	}
}

// TestHubSlowClient: output never waits for a client that does not read;
// what it misses is counted, and the exit status still comes last.
func TestHubSlowClient(t *testing.T) {
	defer func(n int) { ClientBuffer = n }(ClientBuffer)
	ClientBuffer = 4096
	h := NewHub()
	s, c := socketPair(t)
	cl, _ := h.join(s, false, false)
	go cl.serve()
	chunk := make([]byte, 1000)
	const chunks = 20000 // 20 MB: far more than the socket and the queue hold
	start := time.Now()
	for i := 0; i < chunks; i++ {
		h.Output(FrameStdout, chunk)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Output took %v with a client that does not read", d)
	}
	h.Close(0)
	var got, dropped int64
	frames := readAll(t, c)
	for _, f := range frames {
		switch f.typ {
		case FrameStdout:
			got += int64(len(f.payload))
		case FrameDropped:
			dropped += int64(binary.BigEndian.Uint64([]byte(f.payload)))
		}
	}
	if last := frames[len(frames)-1]; last.typ != FrameExit {
		t.Errorf("last frame is %d, want the exit status", last.typ)
	}
	if dropped == 0 || got+dropped != chunks*1000 {
		t.Errorf("got %d + dropped %d bytes, want %d in all, some dropped", got, dropped, chunks*1000)
	}
}

func TestHubStdin(t *testing.T) {
	h := NewHub()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h.SetInput(w, true, nil)
	s, c := socketPair(t)
	cl, _ := h.join(s, true, true)
	go cl.serve()
	c.Write(AppendFrame(nil, FrameStdin, []byte("typed")))
	c.Write(AppendFrame(nil, FrameStdin, nil)) // end of input: StdinOnce closes the container's stdin
	b, err := io.ReadAll(r)
	if err != nil || string(b) != "typed" {
		t.Errorf("container's stdin got %q, %v", b, err)
	}
	h.Close(0)
}
