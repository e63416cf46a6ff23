package engine

import (
	"encoding/json"

	"github.com/cfs-org/cfs/internal/cgroups"
	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/store"
	"github.com/cfs-org/cfs/internal/trace"
)

// Pause freezes every process of a running container (v1 freezer, v2
// cgroup.freeze) and records it as paused. It returns the container's ID.
func (e *Engine) Pause(ref string) (string, error) {
	return e.setPaused(ref, true)
}

// Unpause thaws a paused container.
func (e *Engine) Unpause(ref string) (string, error) {
	return e.setPaused(ref, false)
}

func (e *Engine) setPaused(ref string, pause bool) (string, error) {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return "", err
	}
	unlock, err := e.Containers.Lock(rec.ID)
	if err != nil {
		return "", err
	}
	defer unlock()
	// Re-read under the lock: another pause may have won the race.
	if rec, err = e.Containers.Get(rec.ID); err != nil {
		return "", err
	}
	if !alive(rec.State.Pid) {
		return "", errdefs.Conflictf("container %s is not running", ref)
	}
	if pause && rec.State.Paused {
		return "", errdefs.Conflictf("container %s is already paused", ref)
	}
	if !pause && !rec.State.Paused {
		return "", errdefs.Conflictf("container %s is not paused", ref)
	}
	m, err := e.cgroupOf(rec)
	if err != nil {
		return "", err
	}
	if pause {
		err = m.Freeze()
	} else {
		err = m.Thaw()
	}
	if err != nil {
		return "", err
	}
	err = e.Containers.UpdateLocked(rec.ID, func(r *store.Record) error {
		r.State.Paused = pause
		r.State.Status = store.StatusRunning
		if pause {
			r.State.Status = store.StatusPaused
		}
		return nil
	})
	if err != nil && pause {
		m.Thaw() // do not leave a frozen container that says it runs
	}
	return rec.ID, err
}

// cgroupOf returns the manager of a container's cgroup, as recorded.
func (e *Engine) cgroupOf(rec *store.Record) (cgroups.Manager, error) {
	return cgroupManager(cgroupPathOf(rec), e.Tracer)
}

func cgroupPathOf(rec *store.Record) string {
	var cc containerConfig
	json.Unmarshal(rec.Extra, &cc)
	if cc.Cgroup == "" {
		return "/cfs/" + rec.ID
	}
	return cc.Cgroup
}

// cgroupManager returns a manager for an existing cgroup path. It includes
// our own net_cls hierarchy when mounted (hostView), which matters only to
// Set and Destroy.
func cgroupManager(path string, tr *trace.Tracer) (cgroups.Manager, error) {
	host, err := cgroups.DetectHost()
	if err != nil {
		return nil, err
	}
	return cgroups.New(hostView(host, true), path, tr)
}

// thawForKill thaws a frozen container so that a pending SIGKILL can take
// effect: v1 frozen tasks do not die until thawed. Best effort.
func thawForKill(path string) {
	if m, err := cgroupManager(path, nil); err == nil {
		m.Thaw()
	}
}
