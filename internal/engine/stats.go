package engine

import "time"

// StatsSample is one reading of a container's cgroup counters, the raw
// material of `cfs stats` (and of the API's stats endpoint).
type StatsSample struct {
	ID      string
	Name    string
	Running bool
	Paused  bool
	// Read is when the counters were read (with Go's monotonic clock).
	Read time.Time
	// CPUNanos is the CPU time the container used so far, all CPUs.
	CPUNanos uint64
	// MemUsage is memory in use without the page cache the kernel can
	// drop at once (inactive file pages), as docker stats shows it.
	MemUsage uint64
	// MemLimit is the container's memory limit, or the host's memory when
	// it has none.
	MemLimit   uint64
	BlockRead  uint64
	BlockWrite uint64
	Pids       uint64
	PidsLimit  uint64 // 0: none
	OOMKills   uint64
	OnlineCPUs int
}

// CPUPercent is the CPU use between two samples of one container, as
// docker stats shows it: 100% is one CPU fully used, so a container can
// reach OnlineCPUs × 100%. It is 0 without a usable earlier sample.
func CPUPercent(prev, cur *StatsSample) float64 {
	if prev == nil || cur == nil || prev.ID != cur.ID || cur.CPUNanos < prev.CPUNanos {
		return 0
	}
	wall := cur.Read.Sub(prev.Read)
	if wall <= 0 {
		return 0
	}
	return float64(cur.CPUNanos-prev.CPUNanos) / float64(wall.Nanoseconds()) * 100
}

// MemPercent is memory use as a share of the limit.
func (s *StatsSample) MemPercent() float64 {
	if s.MemLimit == 0 {
		return 0
	}
	return float64(s.MemUsage) / float64(s.MemLimit) * 100
}
