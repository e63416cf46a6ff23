package engine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/store"
)

// Stats reads a container's counters. A container that is not running
// gives a sample with only its ID and name (docker stats shows zeros).
func (e *Engine) Stats(ref string) (*StatsSample, error) {
	rec, err := e.Containers.Get(ref)
	if err != nil {
		return nil, err
	}
	return e.statsOf(e.Refresh(rec))
}

// RunningContainers lists the running containers, newest first.
func (e *Engine) RunningContainers() ([]*store.Record, error) {
	recs, err := e.Containers.List()
	if err != nil {
		return nil, err
	}
	var out []*store.Record
	for _, r := range recs {
		if r = e.Refresh(r); r.State.Running {
			out = append(out, r)
		}
	}
	return out, nil
}

func (e *Engine) statsOf(rec *store.Record) (*StatsSample, error) {
	s := &StatsSample{ID: rec.ID, Name: rec.Name, Running: rec.State.Running, Paused: rec.State.Paused,
		Read: time.Now(), OnlineCPUs: runtime.NumCPU()}
	if !rec.State.Running {
		return s, nil
	}
	m, err := cgroupManager(cgroupPathOf(rec), nil)
	if err != nil {
		return nil, err
	}
	cs, err := m.Stats()
	if err != nil {
		return nil, err
	}
	s.Read = time.Now()
	s.CPUNanos = cs.CPU.UsageNS
	s.MemUsage = cs.Memory.Usage
	if dir, ok := m.Paths()["memory"]; ok {
		if inactive := inactiveFile(filepath.Join(dir, "memory.stat")); inactive < s.MemUsage {
			s.MemUsage -= inactive
		}
	}
	s.MemLimit = cs.Memory.Limit
	if total := hostMemory(); s.MemLimit == 0 || (total > 0 && s.MemLimit > total) {
		s.MemLimit = total
	}
	s.BlockRead, s.BlockWrite = cs.BlkIO.ReadBytes, cs.BlkIO.WriteBytes
	// The init's threads are the runtime's, not the program's: the limit
	// was raised by as many (runtime.WithInitTasks).
	s.Pids, s.PidsLimit = cs.Pids.Current, cs.Pids.Limit
	if n := initTasks(rec.State.Pid); n > 0 && s.Pids >= n {
		s.Pids -= n
		if s.PidsLimit >= n {
			s.PidsLimit -= n
		}
	}
	s.OOMKills = cs.Memory.OOMKills
	return s, nil
}

// inactiveFile reads the reclaimable page cache from memory.stat:
// total_inactive_file on v1 (hierarchical), inactive_file on v2.
func inactiveFile(file string) uint64 {
	f, err := os.Open(file)
	if err != nil {
		return 0
	}
	defer f.Close()
	vals := map[string]uint64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && (k == "total_inactive_file" || k == "inactive_file") {
			vals[k], _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if v, ok := vals["total_inactive_file"]; ok {
		return v
	}
	return vals["inactive_file"]
}

// initTasks counts the threads of a container's init.
func initTasks(pid int) uint64 {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	return uint64(len(ents))
}

func hostMemory() uint64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return uint64(si.Totalram) * uint64(si.Unit)
}
