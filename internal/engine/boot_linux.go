package engine

import (
	"time"

	"github.com/cfs-org/cfs/internal/store"
)

// Boot brings back, after a reboot (or anything else that killed them),
// the containers whose restart policy is always, or unless-stopped and not
// stopped by the user: `cfs system boot`, which the unit file from
// `cfs system unit` runs at start-up. Records that still say running for a
// process that is gone are corrected first. It returns the IDs started and
// the errors met.
func (e *Engine) Boot() (started []string, errs []error) {
	recs, err := e.Containers.List()
	if err != nil {
		return nil, []error{err}
	}
	for _, r := range recs {
		if r.State.Running && !alive(r.State.Pid) {
			// No one waits for a process of before the reboot: record
			// its end now rather than after Refresh's grace period.
			e.Containers.Update(r.ID, func(x *store.Record) error {
				if x.State.Running && !alive(x.State.Pid) {
					x.State.Running, x.State.Paused, x.State.Status, x.State.Pid = false, false, store.StatusExited, 0
					x.State.ExitCode, x.State.FinishedAt = 255, time.Now().UTC()
					x.State.Error = "the container's processes ended without cfs (host reboot?)"
				}
				*r = *x
				return nil
			})
		}
		if r.State.Running {
			continue
		}
		cc := config(r)
		want := cc.Restart.Name == "always" || (cc.Restart.Name == "unless-stopped" && !cc.StopRequested)
		if !want {
			continue
		}
		if _, err := e.Start(r.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		started = append(started, r.ID)
	}
	return started, errs
}
