// Package mount describes mounts as data and performs them. Code that decides
// what to mount (the engine, the snapshotter, the rootfs plan) returns
// []Mount; the runtime's init is the one place that performs them.
package mount

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// Mount is one mount(2) call, or a bind plus remount when Flags ask for
// read-only on a bind (the kernel ignores MS_RDONLY on the first bind call).
type Mount struct {
	Source string
	Target string // absolute path inside the container root
	Type   string
	Flags  uintptr
	// Propagation holds MS_SHARED, MS_SLAVE, MS_PRIVATE, MS_UNBINDABLE
	// (optionally with MS_REC), applied after the mount.
	Propagation []uintptr
	Data        string
	// DetachedFD, when not 0, is a detached mount (open_tree(2), an
	// idmapped clone of Source) attached at Target with move_mount(2)
	// instead of mounting Source; flags and propagation apply as for a
	// bind mount. It is a descriptor of the process, never sent on.
	DetachedFD int `json:"-"`
}

// Flag values (from <sys/mount.h>), repeated here so this file builds and
// unit-tests on any OS.
const (
	RDONLY      = 0x1
	NOSUID      = 0x2
	NODEV       = 0x4
	NOEXEC      = 0x8
	SYNCHRONOUS = 0x10
	REMOUNT     = 0x20
	MANDLOCK    = 0x40
	DIRSYNC     = 0x80
	NOSYMFOLLOW = 0x100
	NOATIME     = 0x400
	NODIRATIME  = 0x800
	BIND        = 0x1000
	MOVE        = 0x2000
	REC         = 0x4000
	SILENT      = 0x8000
	UNBINDABLE  = 0x20000
	PRIVATE     = 0x40000
	SLAVE       = 0x80000
	SHARED      = 0x100000
	RELATIME    = 0x200000
	STRICTATIME = 0x1000000
	LAZYTIME    = 0x2000000
)

type flagOpt struct {
	clear bool
	flag  uintptr
}

var flagOptions = map[string]flagOpt{
	"async":         {true, SYNCHRONOUS},
	"atime":         {true, NOATIME},
	"bind":          {false, BIND},
	"defaults":      {false, 0},
	"dev":           {true, NODEV},
	"diratime":      {true, NODIRATIME},
	"dirsync":       {false, DIRSYNC},
	"exec":          {true, NOEXEC},
	"mand":          {false, MANDLOCK},
	"noatime":       {false, NOATIME},
	"nodev":         {false, NODEV},
	"nodiratime":    {false, NODIRATIME},
	"noexec":        {false, NOEXEC},
	"nomand":        {true, MANDLOCK},
	"norelatime":    {true, RELATIME},
	"nostrictatime": {true, STRICTATIME},
	"nosuid":        {false, NOSUID},
	"nosymfollow":   {false, NOSYMFOLLOW},
	"rbind":         {false, BIND | REC},
	"relatime":      {false, RELATIME},
	"remount":       {false, REMOUNT},
	"ro":            {false, RDONLY},
	"rw":            {true, RDONLY},
	"silent":        {false, SILENT},
	"loud":          {true, SILENT},
	"strictatime":   {false, STRICTATIME},
	"suid":          {true, NOSUID},
	"sync":          {false, SYNCHRONOUS},
	"lazytime":      {false, LAZYTIME},
	"nolazytime":    {true, LAZYTIME},
}

var propagationOptions = map[string]uintptr{
	"private":     PRIVATE,
	"rprivate":    PRIVATE | REC,
	"shared":      SHARED,
	"rshared":     SHARED | REC,
	"slave":       SLAVE,
	"rslave":      SLAVE | REC,
	"unbindable":  UNBINDABLE,
	"runbindable": UNBINDABLE | REC,
}

// PropagationFlag parses a rootfsPropagation value ("rprivate", "slave", ...).
func PropagationFlag(s string) (uintptr, bool) {
	f, ok := propagationOptions[s]
	return f, ok
}

// FromSpec converts an OCI mount into a Mount: known options become flags,
// propagation options are kept apart, the rest is filesystem data.
func FromSpec(m specs.Mount) (Mount, error) {
	if !strings.HasPrefix(m.Destination, "/") {
		return Mount{}, fmt.Errorf("mount destination %q: not an absolute path", m.Destination)
	}
	out := Mount{Source: m.Source, Target: m.Destination, Type: m.Type}
	var data []string
	for _, o := range m.Options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				out.Flags &^= f.flag
			} else {
				out.Flags |= f.flag
			}
			continue
		}
		if p, ok := propagationOptions[o]; ok {
			out.Propagation = append(out.Propagation, p)
			continue
		}
		switch o {
		case "idmap", "ridmap", "tmpcopyup", "copy-symlink":
			// Handled (or refused) by the runtime; not mount data.
			continue
		}
		data = append(data, o)
	}
	if out.Type == "bind" || out.Type == "rbind" {
		out.Flags |= BIND
		if out.Type == "rbind" {
			out.Flags |= REC
		}
		out.Type = ""
	}
	if out.Flags&BIND != 0 {
		out.Type = ""
	}
	out.Data = strings.Join(data, ",")
	return out, nil
}

// IsBind reports whether m is a bind mount.
func (m Mount) IsBind() bool { return m.Flags&BIND != 0 }

// String renders m the way `mount` would be typed, for --explain.
func (m Mount) String() string {
	var b strings.Builder
	typ := m.Type
	if m.IsBind() {
		typ = "bind"
	}
	if m.DetachedFD != 0 {
		typ += " (idmapped)"
	}
	fmt.Fprintf(&b, "%s on %s type %s flags=%s", orNone(m.Source), m.Target, orNone(typ), FlagString(m.Flags))
	if m.Data != "" {
		fmt.Fprintf(&b, " data=%q", m.Data)
	}
	return b.String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

var flagNames = []struct {
	f    uintptr
	name string
}{
	{RDONLY, "MS_RDONLY"}, {NOSUID, "MS_NOSUID"}, {NODEV, "MS_NODEV"}, {NOEXEC, "MS_NOEXEC"},
	{SYNCHRONOUS, "MS_SYNCHRONOUS"}, {REMOUNT, "MS_REMOUNT"}, {MANDLOCK, "MS_MANDLOCK"},
	{DIRSYNC, "MS_DIRSYNC"}, {NOSYMFOLLOW, "MS_NOSYMFOLLOW"}, {NOATIME, "MS_NOATIME"},
	{NODIRATIME, "MS_NODIRATIME"}, {BIND, "MS_BIND"}, {MOVE, "MS_MOVE"}, {REC, "MS_REC"},
	{SILENT, "MS_SILENT"}, {UNBINDABLE, "MS_UNBINDABLE"}, {PRIVATE, "MS_PRIVATE"},
	{SLAVE, "MS_SLAVE"}, {SHARED, "MS_SHARED"}, {RELATIME, "MS_RELATIME"},
	{STRICTATIME, "MS_STRICTATIME"}, {LAZYTIME, "MS_LAZYTIME"},
}

// FlagString renders mount flags as "MS_BIND|MS_REC", or "0".
func FlagString(f uintptr) string {
	if f == 0 {
		return "0"
	}
	var parts []string
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			f &^= n.f
		}
	}
	if f != 0 {
		parts = append(parts, fmt.Sprintf("%#x", f))
	}
	return strings.Join(parts, "|")
}

// UnescapeMountinfo undoes the octal escapes (\040 for space, \011, \012,
// \134) the kernel uses for paths in /proc/PID/mountinfo.
func UnescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
