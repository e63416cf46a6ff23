// Command cfs is the container engine's command line. The same binary is
// the container's init (argv[1] == the hidden init argument) and the
// runc-compatible OCI runtime when invoked as cfs-runtime (argv[0]).
package main

import (
	"os"
	"path/filepath"
	goruntime "runtime"

	"github.com/cfs-org/cfs/internal/cli"
	"github.com/cfs-org/cfs/internal/initbin"
	"github.com/cfs-org/cfs/internal/ocicli"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/supervisor"
)

func init() {
	// The container's init changes per-thread state (capability bounding
	// set, cgroup namespace) and forks the user's program from the same
	// thread: keep main on the main OS thread. Elsewhere, too, the main
	// thread runs only main: the runtime's throw-away threads (that enter
	// a container's namespaces or cgroup to fork its init) are then never
	// the main thread, which Go would keep alive instead of ending.
	goruntime.LockOSThread()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		runtime.Init()
		return
	}
	// Containers' inits start from the lean init built in, when there is
	// one (internal/initbin).
	runtime.InitPath = initbin.Path
	if len(os.Args) > 1 && os.Args[1] == runtime.UsernsArg {
		runtime.HoldUserns()
	}
	if len(os.Args) > 2 && os.Args[1] == supervisor.ServeArg {
		// Installed before any container's init is forked: no child
		// forked meanwhile can hold the new file open (ETXTBSY).
		initbin.Path()
		os.Exit(cli.Supervise(os.Args[2]))
	}
	if filepath.Base(os.Args[0]) == "cfs-runtime" {
		os.Exit(ocicli.Main(os.Args[1:]))
	}
	os.Exit(cli.Main(os.Args[1:]))
}
