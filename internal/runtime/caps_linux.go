package runtime

import (
	"fmt"
	"os"
	"sort"
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

// capMask is a set of capabilities as a bit mask (bit n = capability n).
type capMask uint64

func capsOf(names []string) (capMask, error) {
	var m capMask
	for _, name := range names {
		c, ok := CapNumber(name)
		if !ok {
			return 0, fmt.Errorf("capability %q: unknown", name)
		}
		m |= 1 << c
	}
	return m, nil
}

// threadSecurity is what a thread carries for the processes it forks:
// the bounding set, no_new_privs and whether a seccomp filter is loaded.
type threadSecurity struct {
	bounding capMask
	nnp      bool
	seccomp  bool
}

// applyThreadSecurity sets up the calling (locked) thread for forking the
// container's processes: it validates every capability set, drops the
// bounding set to proc's, sets the inheritable set, then no_new_privs,
// then loads the seccomp filter. Order matters: dropping capabilities and
// capset need privileges the filter may deny, and the filter is loaded
// with CAP_SYS_ADMIN (or no_new_privs).
func applyThreadSecurity(proc *specs.Process, sc *specs.LinuxSeccomp, tr *trace.Tracer) (threadSecurity, error) {
	sec := threadSecurity{bounding: ^capMask(0)}
	if caps := proc.Capabilities; caps != nil {
		for _, set := range [][]string{caps.Effective, caps.Permitted, caps.Inheritable, caps.Ambient} {
			if _, err := capsOf(set); err != nil {
				return sec, err
			}
		}
		b, err := capsOf(caps.Bounding)
		if err != nil {
			return sec, err
		}
		// runtime-spec config.md: capabilities that cannot be granted
		// MUST be logged as a warning; runtimes SHOULD NOT fail.
		if have := currentBounding(); b&^have != 0 {
			fmt.Fprintf(os.Stderr, "cfs: warning: capabilities not in the runtime's bounding set, not granted: %s\n", maskString(b&^have))
			b &= have
		}
		if err := dropBounding(b, tr); err != nil {
			return sec, err
		}
		sec.bounding = b
		if err := setInheritable(caps.Inheritable, b); err != nil {
			return sec, err
		}
	}
	if proc.NoNewPrivileges {
		tr.Step("prctl", "PR_SET_NO_NEW_PRIVS")
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return sec, fmt.Errorf("set no_new_privs: %w", err)
		}
		sec.nnp = true
	}
	if sc != nil {
		if err := loadSeccomp(sc, tr); err != nil {
			return sec, err
		}
		sec.seccomp = true
	}
	return sec, nil
}

// dropBounding removes every capability not in keep from this thread's
// bounding set. Processes forked from this (locked) thread inherit it: for
// root, execve then grants the bounding set (plus the inheritable set);
// for other users it grants only the ambient set.
func dropBounding(keep capMask, tr *trace.Tracer) error {
	var dropped []string
	for name, c := range capByName {
		if keep&(1<<c) != 0 {
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
	if tr.On() {
		tr.Step("caps", "prctl(PR_CAPBSET_DROP) for %d capabilities; bounding set kept: %s", len(dropped), maskString(keep))
	}
	return nil
}

// setInheritable makes this thread's inheritable set exactly names
// (limited to the bounding set): execve adds the inheritable set to a root
// program's permitted set whatever the bounding set says, and keeps it for
// any program.
func setInheritable(names []string, bounding capMask) error {
	want, err := capsOf(names)
	if err != nil {
		return err
	}
	want &= bounding
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	data[0].Inheritable, data[1].Inheritable = uint32(want), uint32(want>>32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset inheritable: %w", err)
	}
	return nil
}

// currentBounding reads this thread's bounding set.
func currentBounding() capMask {
	var m capMask
	for _, c := range capByName {
		if r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0); err == nil && r == 1 {
			m |= 1 << c
		}
	}
	return m
}

func maskString(m capMask) string {
	var names []string
	for name, c := range capByName {
		if m&(1<<c) != 0 {
			names = append(names, strings.TrimPrefix(name, "CAP_"))
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// CapNames lists the capabilities this runtime knows ("CAP_CHOWN", ...).
func CapNames() []string {
	out := make([]string, 0, len(capByName))
	for n := range capByName {
		out = append(out, n)
	}
	return out
}
