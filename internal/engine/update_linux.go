package engine

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/store"
)

// Update changes the limits of a container: the fields d sets replace the
// recorded ones (see merge), the result is validated as `cfs run` would,
// written to the cgroup of a running container, and persisted in the
// record (containerConfig.Resources) and in the container's config.json.
// A stopped container only has its record changed. If the kernel refuses
// a value, the previous limits are written back (best effort) and nothing
// is persisted. It returns the container's ID.
func (e *Engine) Update(ref string, d *ResourceOptions) (string, error) {
	if d.isZero() {
		return "", errdefs.Invalidf("cfs update: give at least one limit flag (see cfs update --help)")
	}
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return "", err
	}
	unlock, err := e.Containers.Lock(rec.ID)
	if err != nil {
		return "", err
	}
	defer unlock()
	if rec, err = e.Containers.Get(rec.ID); err != nil {
		return "", err
	}
	var cc containerConfig
	if err := json.Unmarshal(rec.Extra, &cc); err != nil && len(rec.Extra) > 0 {
		return "", fmt.Errorf("container %s: reading its configuration: %w", ref, err)
	}
	var old ResourceOptions
	if cc.Resources != nil {
		old = *cc.Resources
	}
	merged, err := old.merge(d)
	if err != nil {
		return "", err
	}
	spec, err := merged.Spec()
	if err != nil {
		return "", err
	}
	if alive(rec.State.Pid) && spec != nil {
		m, err := cgroupManager(cgroupPathOf(rec), e.Tracer)
		if err != nil {
			return "", err
		}
		for _, f := range []struct {
			set        bool
			flag, ctrl string
		}{{d.NetClassID != 0, "--net-cls-classid", "net_cls"}, {len(d.NetPriorities) > 0, "--net-prio", "net_prio"}} {
			if dir, ok := m.Paths()[f.ctrl]; f.set && (!ok || !isDir(dir)) {
				return "", errdefs.Unsupportedf("%s: container %s did not join the %s cgroup (only containers started with --net-cls-classid or --net-prio do)", f.flag, ref, f.ctrl)
			}
		}
		if err := m.Set(runtime.WithInitTasks(spec, rec.State.Pid)); err != nil {
			if prev, perr := old.Spec(); perr == nil && prev != nil {
				m.Set(runtime.WithInitTasks(prev, rec.State.Pid))
			}
			return "", err
		}
	}
	err = e.Containers.UpdateLocked(rec.ID, func(r *store.Record) error {
		x, err := setExtraField(r.Extra, "Resources", merged.persisted())
		if err != nil {
			return err
		}
		r.Extra = x
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := updateSpecResources(filepath.Join(e.Containers.Dir(rec.ID), "config.json"), spec); err != nil {
		return "", err
	}
	return rec.ID, nil
}

// setExtraField sets one key of the record's engine JSON, keeping the
// others as they are (fields a newer cfs wrote survive an older one).
func setExtraField(extra json.RawMessage, key string, v any) (json.RawMessage, error) {
	fields := map[string]json.RawMessage{}
	if len(extra) > 0 {
		if err := json.Unmarshal(extra, &fields); err != nil {
			return nil, fmt.Errorf("reading container configuration: %w", err)
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		delete(fields, key)
	} else {
		fields[key] = b
	}
	return json.Marshal(fields)
}

// updateSpecResources rewrites linux.resources of a container's
// config.json, so that it keeps describing the container.
func updateSpecResources(file string, r *specs.LinuxResources) error {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("reading %s: %w", file, err)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.Resources = r
	return writeJSON(file, &s)
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
