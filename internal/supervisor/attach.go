package supervisor

// Attaching (`cfs attach`, `cfs start -a/-i`): a client sends an "attach"
// request (or a "start" request with Attach set) on the supervisor's
// socket, reads the one-line JSON response, and from then on the same
// connection carries frames both ways:
//
//	frame   = type (1 byte) | length (4 bytes, big endian) | payload
//	server → client: FrameStdout, FrameStderr (output), FrameDropped
//	                 (8-byte count of output bytes this client missed),
//	                 FrameExit (4-byte exit status; the server then closes)
//	client → server: FrameStdin (an empty one is end of input),
//	                 FrameResize (rows, cols: 2 bytes each)
//
// The container's output goes to its log whether or not anyone is
// attached, and never waits for a client: each client has a bounded queue
// (ClientBuffer bytes) served by its own goroutine, and output that does
// not fit is dropped for that client only and counted in a FrameDropped.
// The log has everything.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Frame types.
const (
	FrameStdin   byte = 0
	FrameStdout  byte = 1
	FrameStderr  byte = 2
	FrameExit    byte = 3
	FrameDropped byte = 4
	FrameResize  byte = 5
)

// frameHeader is the size of a frame's type and length.
const frameHeader = 5

// MaxFrame bounds a frame's payload (a reader refuses larger ones).
const MaxFrame = 1 << 20

// ClientBuffer is how much output may wait for one slow client before
// more is dropped for it.
var ClientBuffer = 256 << 10

// AppendFrame appends a frame to b.
func AppendFrame(b []byte, typ byte, payload []byte) []byte {
	b = append(b, typ, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[len(b)-4:], uint32(len(payload)))
	return append(b, payload...)
}

// ReadFrame reads one frame from r into buf (grown when too small) and
// returns its type and payload, which aliases buf.
func ReadFrame(r io.Reader, buf []byte) (typ byte, payload []byte, _ []byte, err error) {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return 0, nil, buf, err
	}
	n := binary.BigEndian.Uint32(h[1:])
	if n > MaxFrame {
		return 0, nil, buf, fmt.Errorf("attach: frame of %d bytes is too large", n)
	}
	if int(n) > cap(buf) {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err := io.ReadFull(r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, buf, err
	}
	return h[0], payload, buf, nil
}

// Hub is one run of a detached container as its attach clients see it:
// the engine feeds it the output and gives it the container's input (the
// stdin pipe or the pty master); the supervisor adds clients. A nil *Hub
// is valid and does nothing.
type Hub struct {
	n       atomic.Int32 // len(clients), read without the lock by Output
	mu      sync.Mutex
	clients []*client
	stdin   *os.File // the stdin pipe's write end (ours) or the pty master (not ours)
	ownIn   bool
	pty     *os.File
	closed  bool
}

// NewHub returns a hub with no clients.
func NewHub() *Hub { return &Hub{} }

// SetInput gives the hub the container's input: stdin is the write end of
// the stdin pipe (owned: closed when the hub closes) or, with a terminal,
// the pty master (not owned), which is also what a resize applies to.
func (h *Hub) SetInput(stdin *os.File, owned bool, pty *os.File) {
	if h == nil {
		if owned && stdin != nil {
			stdin.Close()
		}
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stdin, h.ownIn, h.pty = stdin, owned, pty
}

// Output sends output of a stream (FrameStdout or FrameStderr) to every
// client. It never blocks on a client.
func (h *Hub) Output(stream byte, p []byte) {
	if h == nil || h.n.Load() == 0 || len(p) == 0 {
		return
	}
	f := AppendFrame(make([]byte, 0, frameHeader+len(p)), stream, p)
	h.mu.Lock()
	for _, c := range h.clients {
		c.enqueue(f, len(p))
	}
	h.mu.Unlock()
}

// Close ends the run: every client gets its queued output and the exit
// status, and the stdin pipe is closed.
func (h *Hub) Close(code int) {
	if h == nil {
		return
	}
	h.mu.Lock()
	clients := h.clients
	h.clients, h.closed = nil, true
	h.n.Store(0)
	if h.ownIn && h.stdin != nil {
		h.stdin.Close() // also ends a client's Write blocked on a full pipe
	}
	h.stdin, h.pty = nil, nil
	h.mu.Unlock()
	for _, c := range clients {
		c.exit(code)
	}
}

// join adds a client on conn. Its output waits until serve runs (the
// response to the request must go first). It fails once the hub closed.
func (h *Hub) join(conn net.Conn, stdin, stdinOnce bool) (*client, error) {
	c := &client{hub: h, conn: conn, stdin: stdin, stdinOnce: stdinOnce}
	c.cond.L = &c.mu
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errors.New("the container is not running")
	}
	h.clients = append(h.clients, c)
	h.n.Store(int32(len(h.clients)))
	return c, nil
}

func (h *Hub) remove(c *client) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, x := range h.clients {
		if x == c {
			h.clients = append(h.clients[:i], h.clients[i+1:]...)
			break
		}
	}
	h.n.Store(int32(len(h.clients)))
}

// input returns where the client's stdin goes, if anywhere.
func (h *Hub) input() *os.File {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.stdin
}

// closeStdin ends the container's stdin (a client's end of input with
// StdinOnce, as Docker's `start -ai` of a `create -i` container). A pty
// has no end of input short of hanging up, so it stays.
func (h *Hub) closeStdin() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ownIn && h.stdin != nil {
		h.stdin.Close()
		h.stdin = nil
	}
}

func (h *Hub) resize(rows, cols uint16) {
	h.mu.Lock()
	pty := h.pty
	h.mu.Unlock()
	if pty == nil {
		return
	}
	// Not pty.Fd(): that would switch the descriptor to blocking mode
	// under the output copier.
	if rc, err := pty.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
		})
	}
}

// client is one attached connection: its goroutine that writes queued
// output, and the request's goroutine that reads its input (serve).
type client struct {
	hub              *Hub
	conn             net.Conn
	stdin, stdinOnce bool

	mu      sync.Mutex
	cond    sync.Cond
	queue   [][]byte
	queued  int   // payload bytes in queue
	dropped int64 // payload bytes dropped since the last FrameDropped
	code    int
	exited  bool // the container exited: send code after the queue
	gone    bool // the client went away: stop
}

// enqueue queues a frame, or drops it when the client is too far behind.
// Called with the hub's lock held.
func (c *client) enqueue(f []byte, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || c.exited {
		return
	}
	if c.queued+n > ClientBuffer {
		c.dropped += int64(n)
		return
	}
	c.flushDropped()
	c.queue = append(c.queue, f)
	c.queued += n
	c.cond.Signal()
}

// flushDropped queues the count of dropped bytes. Called with c.mu held.
func (c *client) flushDropped() {
	if c.dropped > 0 {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(c.dropped))
		c.queue = append(c.queue, AppendFrame(nil, FrameDropped, b[:]))
		c.dropped = 0
	}
}

func (c *client) exit(code int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exited, c.code = true, code
	c.cond.Signal()
}

func (c *client) leave() {
	c.hub.remove(c)
	c.mu.Lock()
	c.gone = true
	c.queue = nil
	c.cond.Signal()
	c.mu.Unlock()
}

// serve runs the client until it detaches or the container exits: output
// from a goroutine of its own, input here.
func (c *client) serve() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.writeLoop()
	}()
	c.readLoop()
	c.leave()
	<-done
}

func (c *client) writeLoop() {
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.exited && !c.gone {
			c.cond.Wait()
		}
		if c.gone {
			c.mu.Unlock()
			return
		}
		exited := c.exited
		if exited {
			c.flushDropped()
			// A client that stopped reading (a stopped `cfs attach`)
			// must not keep the supervisor up after the container.
			c.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		}
		bufs := net.Buffers(c.queue)
		c.queue, c.queued = nil, 0
		code := c.code
		c.mu.Unlock()
		if len(bufs) > 0 {
			if _, err := bufs.WriteTo(c.conn); err != nil {
				c.conn.Close() // ends readLoop
				return
			}
		}
		if exited {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(int32(code)))
			c.conn.Write(AppendFrame(nil, FrameExit, b[:]))
			// The client closes once it has the status; one that does
			// not is dropped after a while.
			if cw, ok := c.conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
				c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			} else {
				c.conn.Close()
			}
			return
		}
	}
}

func (c *client) readLoop() {
	buf := make([]byte, 4096)
	for {
		typ, p, b, err := ReadFrame(c.conn, buf)
		buf = b
		if err != nil {
			return
		}
		switch typ {
		case FrameStdin:
			if !c.stdin {
				continue
			}
			if len(p) == 0 {
				if c.stdinOnce {
					c.hub.closeStdin()
				}
				continue
			}
			if in := c.hub.input(); in != nil {
				in.Write(p) // blocks while the container does not read: only this client waits
			}
		case FrameResize:
			if len(p) == 4 {
				c.hub.resize(binary.BigEndian.Uint16(p[0:]), binary.BigEndian.Uint16(p[2:]))
			}
		}
	}
}
