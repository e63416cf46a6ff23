package logs

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// watcher wakes a follower when the log directory changes: inotify on the
// directory, so that rotations (renames, creations) wake it as well as
// writes. Without inotify (out of watches) it polls.
type watcher struct {
	f *os.File // the inotify descriptor, in the Go poller; nil when polling
}

func newWatcher(dir string) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return &watcher{}
	}
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM | unix.IN_DELETE | unix.IN_DELETE_SELF
	if _, err := unix.InotifyAddWatch(fd, dir, mask); err != nil {
		unix.Close(fd)
		return &watcher{}
	}
	// A non-blocking descriptor given to os.NewFile joins the runtime's
	// poller, so reads honour deadlines: that is how wait times out and
	// how a cancelled context interrupts it.
	return &watcher{f: os.NewFile(uintptr(fd), "inotify")}
}

// wait returns after a change in the directory, after d, or with ctx's
// error once ctx is cancelled.
func (w *watcher) wait(ctx context.Context, d time.Duration) error {
	if w.f == nil {
		return sleep(ctx, d)
	}
	stop := context.AfterFunc(ctx, func() { w.f.SetReadDeadline(time.Now()) })
	defer stop()
	w.f.SetReadDeadline(time.Now().Add(d))
	// Checked after setting the deadline: a cancellation that raced with
	// it has either been seen here or moves the deadline to now.
	if err := ctx.Err(); err != nil {
		return err
	}
	var buf [4096]byte
	_, err := w.f.Read(buf[:]) // the events themselves do not matter
	if err := ctx.Err(); err != nil {
		return err
	}
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return sleep(ctx, d) // should not happen; do not spin
	}
	return nil
}

func (w *watcher) close() {
	if w.f != nil {
		w.f.Close()
	}
}
