package ocicli

import (
	"encoding/json"
	"os"
	"sort"

	"github.com/opencontainers/runtime-spec/specs-go/features"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/runtime"
)

func newFeaturesCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "features",
		Short: "print what this runtime implements as JSON (runtime-spec features.md)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := json.MarshalIndent(featureSet(), "", "    ")
			if err != nil {
				return err
			}
			os.Stdout.Write(append(b, '\n'))
			return nil
		},
	}
}

func featureSet() *features.Features {
	t, f := true, false
	caps := runtime.CapNames()
	sort.Strings(caps)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: "1.3.0",
		Hooks: []string{runtime.HookPrestart, runtime.HookCreateRuntime, runtime.HookCreateContainer,
			runtime.HookStartContainer, runtime.HookPoststart, runtime.HookPoststop},
		MountOptions: []string{
			"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
			"loud", "mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand",
			"norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime",
			"remount", "ro", "rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "silent",
			"slave", "strictatime", "suid", "sync", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"},
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &t, V2: &t, Systemd: &f, SystemdUser: &f, Rdma: &t},
			Seccomp: &features.Seccomp{
				Enabled: &t, Actions: runtime.SeccompActions, Operators: runtime.SeccompOperators,
				Archs: []string{"SCMP_ARCH_X86_64"}, KnownFlags: runtime.SeccompFlags(),
				SupportedFlags: runtime.SeccompFlags(),
			},
			Apparmor:        &features.Apparmor{Enabled: &f},
			Selinux:         &features.Selinux{Enabled: &f},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &t}},
			NetDevices:      &features.NetDevices{Enabled: &f},
		},
		Annotations: map[string]string{
			"org.opencontainers.runtime-spec.features.runtime": "cfs-runtime " + Version,
		},
	}
}
