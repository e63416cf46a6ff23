package runtime

import (
	"encoding/json"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// syncConn is one end of the parent<->init socket pair.
type syncConn struct{ fd int }

func newSyncPair() (parent *syncConn, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return &syncConn{fd: fds[0]}, os.NewFile(uintptr(fds[1]), "sync"), nil
}

func (c *syncConn) send(m any, fds ...int) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// MSG_NOSIGNAL: a peer that went away is an error, not a SIGPIPE
	// (init forwards every signal it gets to the program).
	return unix.Sendmsg(c.fd, b, oob, nil, unix.MSG_NOSIGNAL)
}

// recvRaw reads one message; a zero-length read means the peer closed.
func (c *syncConn) recvRaw(v any) (fds []int, err error) {
	// Peek at the size first: the config can be large, other messages are
	// tiny, and a 1 MiB buffer per message would cost more than the read.
	size := 4096
	for {
		n, _, _, _, err := unix.Recvmsg(c.fd, nil, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n > size {
			size = n
		}
		break
	}
	buf := make([]byte, size)
	oob := make([]byte, unix.CmsgSpace(4*253))
	for {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, errPeerClosed
		}
		if oobn > 0 {
			msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil {
				for _, m := range msgs {
					if f, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, f...)
					}
				}
			}
		}
		return fds, json.Unmarshal(buf[:n], v)
	}
}

func (c *syncConn) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

type peerClosed struct{}

func (peerClosed) Error() string { return "peer closed the sync socket" }

var errPeerClosed error = peerClosed{}
