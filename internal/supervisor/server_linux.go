package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Handle is a started container process.
type Handle interface {
	Pid() int
	// Wait returns the container's exit code once it has exited and its
	// output is drained.
	Wait() int
}

// Backend is what the supervisor asks of the engine.
type Backend interface {
	// Start starts a created or stopped container.
	Start(id string) (Handle, error)
	// Exited records an exit and says whether to restart, after how long.
	Exited(id string, code int) (restart bool, delay time.Duration)
	// Restart starts the container again after a restart delay, unless it
	// was stopped or removed meanwhile (then it returns nil, nil).
	Restart(id string) (Handle, error)
	// Adopt takes over a detached exec'd process: conn is its connection
	// to the container's init, which kills the process when it closes.
	Adopt(id string, pid int, conn *os.File) (Handle, error)
}

// IdleExit is how long a supervisor with nothing to supervise waits before
// it exits.
var IdleExit = 2 * time.Second

// ErrRunning: another supervisor already serves this root.
var ErrRunning = errors.New("a supervisor already serves this state root")

type server struct {
	b      Backend
	mu     sync.Mutex
	active int // containers running or waiting to restart, and calls in progress
	idle   *time.Timer
	ln     net.Listener
}

// Serve runs the supervisor for root until it has been idle for IdleExit.
func Serve(root string, b Backend) error {
	sock, lock, pidfile := paths(root)
	if err := os.MkdirAll(RunDir, 0o700); err != nil {
		return err
	}
	lf, err := os.OpenFile(lock, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		return ErrRunning
	}
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("supervisor: listen on %s: %w", sock, err)
	}
	os.Chmod(sock, 0o600)
	os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	// Reap only our children: a subreaper would also inherit the
	// orphans of every container init that exits, which are not ours.
	s := &server{b: b, ln: ln}
	s.mu.Lock()
	s.idle = time.AfterFunc(IdleExit, s.maybeExit)
	s.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			break
		}
		s.enter()
		go func() {
			defer s.leave()
			s.handle(c)
		}()
	}
	os.Remove(pidfile)
	return nil
}

func (s *server) enter() {
	s.mu.Lock()
	s.active++
	s.idle.Stop()
	s.mu.Unlock()
}

func (s *server) leave() {
	s.mu.Lock()
	s.active--
	if s.active == 0 {
		s.idle.Reset(IdleExit)
	}
	s.mu.Unlock()
}

func (s *server) maybeExit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == 0 {
		// Unlink first: a client that finds no socket starts a new
		// supervisor (which waits for our lock) instead of failing.
		sock := s.ln.Addr().String()
		os.Remove(sock)
		s.ln.Close()
	}
}

func (s *server) handle(c net.Conn) {
	defer c.Close()
	// One request per connection, in one message: its JSON, and for
	// "adopt" a descriptor.
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	var files []*os.File
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for _, m := range msgs {
			if fds, err := unix.ParseUnixRights(&m); err == nil {
				for _, fd := range fds {
					unix.CloseOnExec(fd)
					files = append(files, os.NewFile(uintptr(fd), "adopted"))
				}
			}
		}
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var req request
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		return
	}
	var resp response
	switch req.Op {
	case "adopt":
		if len(files) != 1 {
			resp.Error, resp.Code = "adopt: no connection passed", 125
			break
		}
		h, err := s.b.Adopt(req.ID, req.Pid, files[0])
		if err != nil {
			resp.Error, resp.Code = err.Error(), codeOf(err)
			break
		}
		s.enter()
		go func() {
			defer s.leave()
			h.Wait()
		}()
		resp.OK = true
	case "ping":
		resp.OK = true
	case "start":
		pid, err := s.start(req.ID)
		if err != nil {
			resp.Error = err.Error()
			resp.Code = codeOf(err)
		} else {
			resp.OK, resp.Pid = true, pid
		}
	default:
		resp.Error = "unknown request " + strconv.Quote(req.Op)
		resp.Code = 125
	}
	json.NewEncoder(c).Encode(resp)
}

// start starts a container and watches it until it exits for good.
func (s *server) start(id string) (int, error) {
	h, err := s.b.Start(id)
	if err != nil {
		return 0, err
	}
	s.enter()
	go func() {
		defer s.leave()
		for h != nil {
			code := h.Wait()
			again, delay := s.b.Exited(id, code)
			if !again {
				return
			}
			time.Sleep(delay)
			h, err = s.b.Restart(id)
			if err != nil {
				log.Printf("restart %s: %v", id, err)
			}
		}
	}()
	return h.Pid(), nil
}

// ExitCoder is an error that carries the exit code to report.
type ExitCoder interface{ ExitCode() int }

func codeOf(err error) int {
	var ec ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 125
}
