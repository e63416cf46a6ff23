package engine

import (
	"github.com/cfs-org/cfs/internal/errdefs"
)

// merge returns the limits after `cfs update` with d: every field d sets
// replaces the current one, the others stay. Knobs that are two spellings
// of one kernel setting replace each other (--cpus and --cpu-period/quota,
// --cpu-shares and --cpu-weight, --blkio-weight and --io-weight). Errors
// name the flag.
func (r ResourceOptions) merge(d *ResourceOptions) (ResourceOptions, error) {
	n := r
	if d.CgroupParent != "" {
		return n, errdefs.Invalidf("--cgroup-parent: cannot be changed on an existing container")
	}
	if d.Memory != 0 {
		n.Memory = d.Memory
		// An explicit memory+swap limit stays and must still hold the
		// new memory limit; the default (twice --memory) follows it.
		if d.MemorySwap == 0 && r.MemorySwap > 0 && r.MemorySwap < d.Memory {
			return n, errdefs.Invalidf("--memory %s: above the container's --memory-swap %s (memory plus swap): update --memory-swap too",
				FormatBytes(d.Memory), FormatBytes(r.MemorySwap))
		}
	}
	if d.MemorySwap != 0 {
		n.MemorySwap = d.MemorySwap
	}
	if d.MemoryReservation != 0 {
		n.MemoryReservation = d.MemoryReservation
	}
	if d.MemoryHigh != 0 {
		n.MemoryHigh = d.MemoryHigh
	}
	if d.OomKillDisable != nil {
		n.OomKillDisable = d.OomKillDisable
	}

	// Conflicts within one update; across updates the newer wins.
	if err := d.checkStatic(); err != nil {
		return n, err
	}
	if d.NanoCPUs != 0 {
		n.NanoCPUs, n.CPUPeriod, n.CPUQuota = d.NanoCPUs, 0, 0
	}
	if d.CPUPeriod != 0 || d.CPUQuota != 0 {
		if r.NanoCPUs != 0 {
			// Keep the half not given as --cpus had it in the kernel.
			n.NanoCPUs, n.CPUPeriod, n.CPUQuota = 0, DefaultCPUPeriod, r.NanoCPUs/(1e9/DefaultCPUPeriod)
		}
		if d.CPUPeriod != 0 {
			n.CPUPeriod = d.CPUPeriod
		}
		if d.CPUQuota != 0 {
			n.CPUQuota = d.CPUQuota
		}
	}
	if d.CPUShares != 0 {
		n.CPUShares, n.CPUWeight = d.CPUShares, 0
	}
	if d.CPUWeight != 0 {
		n.CPUWeight, n.CPUShares = d.CPUWeight, 0
	}
	if d.CpusetCpus != "" {
		n.CpusetCpus = d.CpusetCpus
	}
	if d.CpusetMems != "" {
		n.CpusetMems = d.CpusetMems
	}
	if d.PidsLimit != nil {
		n.PidsLimit = d.PidsLimit
	}
	if d.BlkioWeight != 0 {
		n.BlkioWeight, n.IOWeight = d.BlkioWeight, 0
	}
	if d.IOWeight != 0 {
		n.IOWeight, n.BlkioWeight = d.IOWeight, 0
	}
	// Device limits replace the limit of the same device; rate 0 removes
	// a limit in the kernel and is kept so that re-applying stays right.
	n.BlkioDeviceReadBps = mergeDevices(r.BlkioDeviceReadBps, d.BlkioDeviceReadBps)
	n.BlkioDeviceWriteBps = mergeDevices(r.BlkioDeviceWriteBps, d.BlkioDeviceWriteBps)
	n.BlkioDeviceReadIOps = mergeDevices(r.BlkioDeviceReadIOps, d.BlkioDeviceReadIOps)
	n.BlkioDeviceWriteIOps = mergeDevices(r.BlkioDeviceWriteIOps, d.BlkioDeviceWriteIOps)
	if d.NetClassID != 0 {
		n.NetClassID = d.NetClassID
	}
	prios := append([]NetPriority(nil), r.NetPriorities...)
	for _, p := range d.NetPriorities {
		replaced := false
		for i := range prios {
			if prios[i].Name == p.Name {
				prios[i], replaced = p, true
			}
		}
		if !replaced {
			prios = append(prios, p)
		}
	}
	n.NetPriorities = prios
	return n, nil
}

func mergeDevices(old, upd []ThrottleDevice) []ThrottleDevice {
	out := append([]ThrottleDevice(nil), old...)
	for _, u := range upd {
		replaced := false
		for i := range out {
			if out[i].Path == u.Path {
				out[i], replaced = u, true
			}
		}
		if !replaced {
			out = append(out, u)
		}
	}
	return out
}
