package runtime

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The OCI console socket (--console-socket): the caller listens on a unix
// stream socket and the runtime sends it the pty master of a container
// (or exec'd process) with a terminal. The wire format is runc's
// (utils.SendRawFd): one message whose payload is the master's name,
// "/dev/ptmx", with the descriptor as SCM_RIGHTS.

// SendConsole connects to the console socket at path and sends master.
func SendConsole(path string, master *os.File) error {
	if master == nil {
		return errors.New("console socket: no pty master to send")
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console socket: %w", err)
	}
	defer unix.Close(fd)
	err = withShortPath(path, func(p string) error {
		return unix.Connect(fd, &unix.SockaddrUnix{Name: p})
	})
	if err != nil {
		return fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	name := master.Name()
	if name == "" {
		name = "/dev/ptmx"
	}
	if err := unix.Sendmsg(fd, []byte(name), unix.UnixRights(int(master.Fd())), nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("send pty master to console socket %s: %w", path, err)
	}
	return nil
}

// RecvConsole accepts one connection on the listening stream socket l and
// receives a pty master the way SendConsole sends it (for tests and tools).
func RecvConsole(l int) (*os.File, error) {
	nfd, _, err := unix.Accept4(l, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer unix.Close(nfd)
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(nfd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, errors.New("console socket: no descriptor received")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, errors.New("console socket: no descriptor received")
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}
