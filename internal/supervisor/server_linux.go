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

// Backend is what the supervisor asks of the engine. A container is
// started with a Hub, which the engine feeds with the container's output
// and input before the program runs (attach.go).
type Backend interface {
	// Start starts a created or stopped container.
	Start(id string, hub *Hub) (Handle, error)
	// Exited records an exit and says whether to restart, after how long.
	Exited(id string, code int) (restart bool, delay time.Duration)
	// Restart starts the container again after a restart delay, unless it
	// was stopped or removed meanwhile (then it returns nil, nil).
	Restart(id string, hub *Hub) (Handle, error)
	// Run creates and starts a container from run options (JSON) and
	// returns its ID.
	Run(opts []byte, hub *Hub) (string, Handle, error)
	// Adopt takes over a detached exec'd process: conn is its connection
	// to the container's init, which kills the process when it closes.
	Adopt(id string, pid int, conn *os.File) (Handle, error)
}

// IdleExit is how long a supervisor with nothing to supervise waits before
// it exits.
var IdleExit = 2 * time.Second

// ErrNotAttachable: the supervisor runs no such container (it runs in the
// foreground of a `cfs run`, is not running, or its supervisor was
// restarted).
var ErrNotAttachable = errors.New("the container is not running under this state root's supervisor")

// ErrRunning: another supervisor already serves this root.
var ErrRunning = errors.New("a supervisor already serves this state root")

type server struct {
	b      Backend
	sock   string
	mu     sync.Mutex
	active int // containers running or waiting to restart, and calls in progress
	idle   *time.Timer
	ln     *net.UnixListener
	// closing: idle, the socket path is unlinked and the backlog drains.
	closing bool
	// hubs are the running containers' attach hubs, by ID.
	hubs map[string]*Hub
}

// Serve runs the supervisor for root until it has been idle for IdleExit.
// A second supervisor for the same root waits for the first to finish
// exiting (the lock), so a client never finds nobody.
func Serve(root string, b Backend) error {
	sock, lock, pidfile := paths(root)
	if err := os.MkdirAll(RunDir, 0o700); err != nil {
		return err
	}
	var lf *os.File
	var err error
	defer func() {
		if lf != nil {
			lf.Close()
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if lf == nil {
			if lf, err = os.OpenFile(lock, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600); err != nil {
				return err
			}
		}
		if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err == nil {
			// The supervisor we waited for removes the lock file as it
			// exits (below): ours must still be the one at the path.
			if sameFile(lf, lock) {
				break
			}
			lf.Close()
			lf = nil
			continue
		}
		// Another supervisor serves (then the socket answers: we are
		// not needed) or is exiting (then we take over).
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return ErrRunning
		}
		if time.Now().After(deadline) {
			return ErrRunning
		}
		time.Sleep(5 * time.Millisecond)
	}
	s := &server{b: b, sock: sock, hubs: map[string]*Hub{}}
	if err := s.listen(); err != nil {
		return err
	}
	os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	s.mu.Lock()
	s.idle = time.AfterFunc(IdleExit, s.maybeExit)
	s.mu.Unlock()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if !s.drained() {
				continue
			}
			break
		}
		s.enter()
		go func() {
			defer s.leave()
			s.handle(c)
		}()
	}
	os.Remove(pidfile)
	// Nothing of ours stays in RunDir: the lock file goes while we hold
	// it (a supervisor waiting on it sees that and opens the new one), the
	// log when it is empty.
	os.Remove(lock)
	if fi, err := os.Stat(lock + ".log"); err == nil && fi.Size() == 0 {
		os.Remove(lock + ".log")
	}
	return nil
}

// sameFile reports whether f is the file at path.
func sameFile(f *os.File, path string) bool {
	var a, b unix.Stat_t
	if unix.Fstat(int(f.Fd()), &a) != nil || unix.Stat(path, &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

func (s *server) listen() error {
	os.Remove(s.sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("supervisor: listen on %s: %w", s.sock, err)
	}
	ln.SetUnlinkOnClose(false)
	os.Chmod(s.sock, 0o600)
	s.ln = ln
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

// maybeExit starts the idle exit: unlink the socket (a new client then
// starts a new supervisor, which waits for our lock), then serve what is
// already queued before closing (drained).
func (s *server) maybeExit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == 0 && !s.closing {
		s.closing = true
		os.Remove(s.sock)
		s.ln.SetDeadline(time.Now().Add(20 * time.Millisecond))
	}
}

// drained decides, after Accept timed out while closing, whether to exit
// (nothing came) or to serve on (a queued request made us busy again: the
// socket comes back, which is safe as we still hold the lock).
func (s *server) drained() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		return false
	}
	if s.active == 0 {
		s.ln.Close()
		return true
	}
	s.closing = false
	s.ln.Close()
	if err := s.listen(); err != nil {
		log.Printf("supervisor: %v", err)
		return true
	}
	return false
}

func (s *server) handle(c net.Conn) {
	defer c.Close()
	// One request per connection, in one message: its JSON, and for
	// "adopt" a descriptor.
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.(*net.UnixConn).ReadMsgUnix(buf, oob)
	if err != nil {
		return
	}
	// The JSON ends with a newline; a large one may take more reads.
	for n > 0 && buf[n-1] != '\n' {
		if n == len(buf) {
			buf = append(buf, make([]byte, len(buf))...)
		}
		m, err := c.Read(buf[n:])
		if err != nil {
			return
		}
		n += m
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
	// attached: the connection goes on as the client's attach stream
	// once the response is sent.
	var attached *client
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
	case "attach":
		s.mu.Lock()
		hub := s.hubs[req.ID]
		s.mu.Unlock()
		if hub == nil {
			resp.Error, resp.Code = ErrNotAttachable.Error(), 1
			break
		}
		cl, err := hub.join(c, req.Stdin, req.StdinOnce)
		if err != nil {
			resp.Error, resp.Code = ErrNotAttachable.Error(), 1
			break
		}
		attached, resp.OK = cl, true
	case "start":
		hub := NewHub()
		if req.Attach {
			// Joined before the program runs: no output is missed.
			attached, _ = hub.join(c, req.Stdin, req.StdinOnce)
		}
		h, err := s.b.Start(req.ID, hub)
		if err != nil {
			attached = nil
			resp.Error, resp.Code = err.Error(), codeOf(err)
			break
		}
		s.watch(req.ID, h, hub)
		resp.OK, resp.Pid = true, h.Pid()
	case "run":
		hub := NewHub()
		id, h, err := s.b.Run(req.Opts, hub)
		if err != nil {
			resp.Error, resp.Code = err.Error(), codeOf(err)
			break
		}
		s.watch(id, h, hub)
		resp.OK, resp.Pid, resp.ID = true, h.Pid(), id
	default:
		resp.Error = "unknown request " + strconv.Quote(req.Op)
		resp.Code = 125
	}
	if err := json.NewEncoder(c).Encode(resp); err != nil {
		if attached != nil {
			attached.leave()
		}
		return
	}
	if attached != nil {
		attached.serve()
	}
}

// watch follows a started container until it exits for good, restarting
// it as its policy says. Each run has its own hub; attach finds the
// current one by ID.
func (s *server) watch(id string, h Handle, hub *Hub) {
	s.enter()
	go func() {
		defer s.leave()
		for h != nil {
			s.setHub(id, nil, hub)
			code := h.Wait()
			s.setHub(id, hub, nil)
			hub.Close(code)
			again, delay := s.b.Exited(id, code)
			if !again {
				return
			}
			time.Sleep(delay)
			hub = NewHub()
			var err error
			if h, err = s.b.Restart(id, hub); err != nil {
				log.Printf("restart %s: %v", id, err)
			}
		}
	}()
}

// setHub replaces container id's hub old with hub (nil: none).
func (s *server) setHub(id string, old, hub *Hub) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hubs[id] != old {
		return
	}
	if hub == nil {
		delete(s.hubs, id)
	} else {
		s.hubs[id] = hub
	}
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
