package cli

import (
	"fmt"
	goruntime "runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/runtime"
)

// version is the revision cfs was built from (its VCS stamp), "devel"
// without one.
func version() string {
	v := "devel"
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v = s.Value
			if len(v) > 12 {
				v = v[:12]
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		v += "-dirty"
	}
	return v
}

// initDescription says which executable containers' inits start from.
func initDescription() string {
	if p := runtime.InitPath; p != nil {
		if path := p(); path != "" {
			return path + " (the lean init built into cfs)"
		}
	}
	return "cfs itself (/proc/self/exe)"
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Show the cfs version and build",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "Version:         %s\n", version())
			fmt.Fprintf(w, "Go version:      %s\n", goruntime.Version())
			fmt.Fprintf(w, "OS/Arch:         %s/%s\n", goruntime.GOOS, goruntime.GOARCH)
			fmt.Fprintf(w, "Container init:  %s\n", initDescription())
			return nil
		},
	}
}
