//go:build !linux

package logs

import (
	"context"
	"time"
)

// watcher polls where there is no inotify.
type watcher struct{}

func newWatcher(dir string) *watcher { return &watcher{} }

func (w *watcher) wait(ctx context.Context, d time.Duration) error {
	return sleep(ctx, min(d, 100*time.Millisecond))
}

func (w *watcher) close() {}
