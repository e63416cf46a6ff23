//go:build !cfs_lean

package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/image"
)

// transferUI shows the blobs of a pull or push: one bar per layer with
// bytes and speed on a terminal, one line per state change otherwise,
// nothing when quiet.
type transferUI struct {
	w     io.Writer
	quiet bool
	mu    sync.Mutex
	p     *mpb.Progress // nil unless w is a terminal
	blobs map[string]*blobState
	order []string
}

type blobState struct {
	status  image.ProgressStatus
	bar     *mpb.Bar
	started time.Time
	last    time.Time
	current int64
	total   int64
}

func newTransferUI(w io.Writer, quiet bool) *transferUI {
	u := &transferUI{w: w, quiet: quiet, blobs: map[string]*blobState{}}
	// Bars need a terminal with a width (a pty made by script(1) may
	// have none): else, plain lines.
	if f, ok := w.(*os.File); ok && !quiet && term.IsTerminal(int(f.Fd())) && termWidth(f) > 0 {
		u.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(120*time.Millisecond))
	}
	return u
}

// event takes an image.ProgressEvent; it is safe for concurrent use.
func (u *transferUI) event(ev image.ProgressEvent) {
	if u.quiet {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	b := u.blobs[ev.ID]
	if b == nil {
		b = &blobState{total: ev.Total}
		u.blobs[ev.ID] = b
		u.order = append(u.order, ev.ID)
		if u.p != nil {
			b.bar = u.newBar(ev.ID, b)
		}
	}
	prev := b.status
	b.status = ev.Status
	now := time.Now()
	switch ev.Status {
	case image.StatusDownloading, image.StatusBlobOnly, image.StatusPushing:
		if b.started.IsZero() || prev == image.StatusRetrying {
			b.started, b.last = now, now
			if b.bar != nil {
				b.bar.DecoratorAverageAdjust(now)
			}
		}
	}
	if ev.Total > 0 {
		b.total = ev.Total
	}
	if b.bar != nil {
		u.updateBar(b, ev, now)
		return
	}
	u.line(ev, b, prev, now)
}

func (u *transferUI) newBar(id string, b *blobState) *mpb.Bar {
	status := func(decor.Statistics) string { return string(b.status) }
	return u.p.New(b.total, mpb.BarStyle().Lbound("[").Rbound("]"),
		mpb.PrependDecorators(
			decor.Name(id+": "),
			decor.Any(status, decor.WC{W: 21, C: decor.DindentRight}),
		),
		mpb.AppendDecorators(
			decor.Counters(decor.SizeB1024(0), "% .1f / % .1f", decor.WC{W: 22}),
			decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WC{W: 14}),
		),
	)
}

func (u *transferUI) updateBar(b *blobState, ev image.ProgressEvent, now time.Time) {
	switch ev.Status {
	case image.StatusExists, image.StatusLayerExists, image.StatusPullComplete, image.StatusPushed:
		b.bar.SetTotal(b.total, true)
	case image.StatusFailed:
		b.bar.Abort(false)
	case image.StatusRetrying:
		b.bar.SetCurrent(0)
	default:
		if ev.Current >= b.total && b.total > 0 {
			// Completion is the pull's word, after verification.
			ev.Current = b.total - 1
		}
		b.bar.EwmaSetCurrent(ev.Current, now.Sub(b.last))
		b.last = now
	}
	b.current = ev.Current
}

// line prints state changes for logs and pipes.
func (u *transferUI) line(ev image.ProgressEvent, b *blobState, prev image.ProgressStatus, now time.Time) {
	if ev.Status == prev && ev.Status != image.StatusRetrying {
		return
	}
	switch ev.Status {
	case image.StatusWaiting:
		return
	case image.StatusDownloading, image.StatusBlobOnly, image.StatusPushing:
		fmt.Fprintf(u.w, "%s: %s %s\n", ev.ID, ev.Status, humanBytes(b.total))
	case image.StatusPullComplete, image.StatusPushed:
		d := now.Sub(b.started)
		speed := ""
		if d > 0 && !b.started.IsZero() {
			speed = fmt.Sprintf(", %s/s", humanBytes(int64(float64(b.total)/d.Seconds())))
		}
		fmt.Fprintf(u.w, "%s: %s (%s in %v%s)\n", ev.ID, ev.Status, humanBytes(b.total), d.Round(time.Millisecond), speed)
	case image.StatusRetrying, image.StatusFailed:
		fmt.Fprintf(u.w, "%s: %s: %v\n", ev.ID, ev.Status, ev.Err)
	default:
		fmt.Fprintf(u.w, "%s: %s\n", ev.ID, ev.Status)
	}
}

// wait lets the bars draw their final state.
func (u *transferUI) wait() {
	if u.p == nil {
		return
	}
	u.mu.Lock()
	for _, id := range u.order {
		if b := u.blobs[id]; !b.bar.Completed() && !b.bar.Aborted() {
			b.bar.Abort(false)
		}
	}
	u.mu.Unlock()
	u.p.Wait()
}

// humanBytes is a binary-unit size for progress lines.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	units := []string{"KiB", "MiB", "GiB", "TiB"}
	i := -1
	for f >= unit && i < len(units)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}

func termWidth(f *os.File) int {
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return w
}
