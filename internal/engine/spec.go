package engine

import (
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultPath is the PATH a container gets when its image sets none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultCaps is Docker's default capability set.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// MaskedPaths and ReadonlyPaths are Docker's defaults.
var (
	MaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	ReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// RemapRange is the host id range that container ids 0..65535 map to under
// --userns remap: unprivileged on the host, above any regular account.
var RemapRange = specs.LinuxIDMapping{ContainerID: 0, HostID: 100000, Size: 65536}

// specInput is everything spec generation needs; it is pure data so the
// spec can be unit-tested without root.
type specInput struct {
	ID       string
	Opts     *RunOptions
	Parsed   *parsed
	Image    ocispec.ImageConfig
	User     resolvedUser
	Rootfs   string
	Hostname string
	// EtcFiles maps /etc/hostname, /etc/hosts, /etc/resolv.conf to the
	// host files bind-mounted there.
	EtcFiles  [][2]string
	Cgroup    string
	Width     uint
	Height    uint
	Resources *specs.LinuxResources
}

type resolvedUser struct {
	UID, GID uint32
	Groups   []uint32
	Home     string
}

// processArgs merges the image's entrypoint and cmd with the user's, as
// Docker does: --entrypoint replaces the entrypoint and drops the image's
// cmd; a user command replaces the cmd.
func processArgs(img ocispec.ImageConfig, o *RunOptions) []string {
	entry := img.Entrypoint
	cmd := img.Cmd
	if o.Entrypoint != nil {
		entry = nil
		if *o.Entrypoint != "" {
			entry = []string{*o.Entrypoint}
		}
		cmd = nil
	}
	if len(o.Cmd) > 0 {
		cmd = o.Cmd
	}
	return append(append([]string{}, entry...), cmd...)
}

// mergeEnv layers image env, defaults and user env; later keys win and
// keep the position of their first appearance.
func mergeEnv(layers ...[]string) []string {
	idx := map[string]int{}
	var out []string
	for _, l := range layers {
		for _, e := range l {
			k, _, _ := strings.Cut(e, "=")
			if i, ok := idx[k]; ok {
				out[i] = e
				continue
			}
			idx[k] = len(out)
			out = append(out, e)
		}
	}
	return out
}

func buildSpec(in *specInput) *specs.Spec {
	o := in.Opts
	hasPath := false
	for _, e := range in.Image.Env {
		if strings.HasPrefix(e, "PATH=") {
			hasPath = true
		}
	}
	var defaults []string
	if !hasPath {
		defaults = append(defaults, DefaultPath)
	}
	defaults = append(defaults, "HOSTNAME="+in.Hostname)
	if o.TTY {
		defaults = append(defaults, "TERM=xterm")
	}
	if in.User.Home != "" {
		defaults = append(defaults, "HOME="+in.User.Home)
	} else {
		defaults = append(defaults, "HOME=/")
	}
	env := mergeEnv(defaults, in.Image.Env, in.Parsed.env)

	cwd := in.Image.WorkingDir
	if o.Workdir != "" {
		cwd = o.Workdir
	}
	if cwd == "" {
		cwd = "/"
	}
	caps := append([]string{}, DefaultCaps...)
	proc := &specs.Process{
		Terminal: o.TTY,
		Args:     processArgs(in.Image, o),
		Env:      env,
		Cwd:      cwd,
		User:     specs.User{UID: in.User.UID, GID: in.User.GID, AdditionalGids: in.User.Groups},
		Capabilities: &specs.LinuxCapabilities{
			Bounding: caps, Effective: caps, Permitted: caps,
		},
	}
	if o.TTY && in.Width > 0 && in.Height > 0 {
		proc.ConsoleSize = &specs.Box{Width: in.Width, Height: in.Height}
	}
	mounts := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
	}
	for _, f := range in.EtcFiles {
		mounts = append(mounts, specs.Mount{Destination: f[0], Type: "bind", Source: f[1], Options: []string{"rbind", "rprivate"}})
	}
	for _, v := range in.Parsed.volumes {
		opts := []string{"rbind", "rprivate"}
		if v.ReadOnly {
			opts = append(opts, "ro")
		}
		mounts = append(mounts, specs.Mount{Destination: v.Target, Type: "bind", Source: v.Source, Options: opts})
	}
	for _, t := range in.Parsed.tmpfs {
		mounts = append(mounts, specs.Mount{Destination: t.Target, Type: "tmpfs", Source: "tmpfs", Options: t.Options})
	}
	linux := &specs.Linux{
		Namespaces:    containerNamespaces(o.Network == "host"),
		CgroupsPath:   in.Cgroup,
		Resources:     in.Resources,
		MaskedPaths:   append([]string{}, MaskedPaths...),
		ReadonlyPaths: append([]string{}, ReadonlyPaths...),
	}
	if o.Userns == "remap" {
		linux.Namespaces = append(linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		linux.UIDMappings = []specs.LinuxIDMapping{RemapRange}
		linux.GIDMappings = []specs.LinuxIDMapping{RemapRange}
	}
	return &specs.Spec{
		Version:  specs.Version,
		Process:  proc,
		Root:     &specs.Root{Path: in.Rootfs, Readonly: o.ReadOnly},
		Hostname: in.Hostname,
		Mounts:   mounts,
		Linux:    linux,
		Annotations: map[string]string{
			"io.cfs.container.id": in.ID,
		},
	}
}

// containerNamespaces are a container's new namespaces (a user namespace
// is added for --userns remap): the spare inits of run -d are spawned in
// the same set (spareSpec).
func containerNamespaces(hostNetwork bool) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
		{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
	}
	if !hostNetwork {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	return ns
}
