package cgroups

import (
	"math"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// Ranges the kernel enforces, from kernel/sched (MIN_SHARES, MAX_SHARES),
// cgroup v2 (CGROUP_WEIGHT_MIN/MAX) and the blkio weight range.
const (
	minShares     = 2
	maxShares     = 262144 // 1 << 18
	minWeight     = 1
	maxWeight     = 10000
	minBlkio      = 10
	maxBlkio      = 1000
	defaultPeriod = 100000 // default CFS period in µs
)

// CPUSharesToWeight converts cgroup v1 cpu.shares [2, 262144] to cgroup v2
// cpu.weight [1, 10000]. 0 means unset and stays 0; values outside the
// range are clamped.
//
// It uses the conversion runc (opencontainers/cgroups#20, for runc#4772),
// crun (#1721) and Kubernetes agreed on in 2025: with l = log2(shares),
//
//	weight = ceil(10^((l² + 125·l) / 612 − 7/34))
//
// a quadratic in log space that maps the ends of the ranges onto each other
// (2 -> 1, 262144 -> 10000) and, unlike the old linear formula
// 1 + (shares−2)·9999/262142 which gave 39, maps the v1 default 1024 to the
// v2 default 100. 7/34 is written as 126/612 so that the exponent is exact
// at l = 10 and ceil does not round 100.000…01 up to 101.
func CPUSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= minShares:
		return minWeight
	case shares >= maxShares:
		return maxWeight
	}
	l := math.Log2(float64(shares))
	w := uint64(math.Ceil(math.Pow(10, (l*l+125*l-126)/612)))
	return min(max(w, minWeight), maxWeight)
}

// BlkioWeightToIOWeight converts a cgroup v1 blkio weight [10, 1000] to a
// cgroup v2 io.weight [1, 10000] linearly: 1 + (w−10)·9999/990. 0 stays 0.
func BlkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	w = min(max(w, minBlkio), maxBlkio)
	return 1 + (uint64(w)-minBlkio)*9999/990
}

// SwapToV2 converts the runtime-spec swap limit, which is memory+swap as in
// v1 memory.memsw.limit_in_bytes, to cgroup v2 memory.swap.max, which counts
// swap alone. It returns the value (-1 for "max") and whether to write it at
// all: memsw 0 means unset. memsw equal to memory means no swap: 0, set.
func SwapToV2(memsw, memory int64) (swap int64, set bool, err error) {
	switch {
	case memory == -1 && memsw == 0:
		// Unlimited memory with swap unset: make swap unlimited too, as
		// v1 would behave (memsw follows an unlimited memory limit).
		return -1, true, nil
	case memsw == 0:
		return 0, false, nil
	case memsw == -1:
		return -1, true, nil
	case memsw < -1:
		return 0, false, errdefs.Invalidf("memory.swap %d: must be -1 (unlimited) or positive", memsw)
	case memory == -1:
		// Memory is unlimited: the sum is bounded only by swap.
		return memsw, true, nil
	case memory == 0:
		return 0, false, errdefs.Invalidf("memory.swap %d: cgroup v2 needs memory.limit too, to compute swap = swap - limit", memsw)
	case memory < 0:
		return 0, false, errdefs.Invalidf("memory.limit %d: must be -1 (unlimited) or positive", memory)
	case memsw < memory:
		return 0, false, errdefs.Invalidf("memory.swap %d: is memory+swap and must be >= memory.limit %d", memsw, memory)
	}
	return memsw - memory, true, nil
}
