package runtime

import (
	"fmt"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/cfs-org/cfs/internal/trace"
)

// capByName maps "CAP_CHOWN" to its number, for every capability this
// kernel knows.
var capByName = map[string]int{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE, "CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH,
	"CAP_FOWNER": unix.CAP_FOWNER, "CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP, "CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE,
	"CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE, "CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST,
	"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK,
	"CAP_IPC_OWNER": unix.CAP_IPC_OWNER, "CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE, "CAP_SYS_PACCT": unix.CAP_SYS_PACCT,
	"CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME, "CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG,
	"CAP_MKNOD": unix.CAP_MKNOD, "CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP, "CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE,
	"CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN, "CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ, "CAP_PERFMON": unix.CAP_PERFMON,
	"CAP_BPF": unix.CAP_BPF, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}

// CapNumber returns the number of a capability name ("CAP_NET_RAW" or
// "net_raw").
func CapNumber(name string) (int, bool) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	c, ok := capByName[n]
	return c, ok
}

// dropBounding removes every capability not listed in caps.Bounding from
// this thread's bounding set. The user's program is forked from this
// (locked) thread, and for root execve then grants exactly the bounding
// set; for other users execve clears all capabilities.
func dropBounding(caps *specs.LinuxCapabilities, tr *trace.Tracer) error {
	if caps == nil {
		return nil
	}
	keep := map[int]bool{}
	for _, name := range caps.Bounding {
		c, ok := CapNumber(name)
		if !ok {
			return fmt.Errorf("capability %q: unknown", name)
		}
		keep[c] = true
	}
	var dropped []string
	for name, c := range capByName {
		if keep[c] {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil {
			if err == unix.EINVAL { // not known to this kernel
				continue
			}
			return fmt.Errorf("drop %s from the bounding set: %w", name, err)
		}
		dropped = append(dropped, name)
	}
	// execve adds the inheritable set to root's permitted set whatever the
	// bounding set says: keep only what the spec lists there.
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	var inh [2]uint32
	for _, name := range caps.Inheritable {
		if c, ok := CapNumber(name); ok && keep[c] {
			inh[c/32] |= 1 << (c % 32)
		}
	}
	data[0].Inheritable, data[1].Inheritable = inh[0], inh[1]
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset inheritable: %w", err)
	}
	if tr.On() {
		tr.Step("caps", "prctl(PR_CAPBSET_DROP) for %d capabilities; bounding set kept: %s", len(dropped), strings.Join(caps.Bounding, ","))
	}
	return nil
}
