// Command cfs is the container engine's command line. The same binary is
// the container's init (argv[1] == the hidden init argument) and, later,
// the runc-compatible runtime when invoked as cfs-runtime.
package main

import (
	"os"
	goruntime "runtime"

	"github.com/cfs-org/cfs/internal/cli"
	"github.com/cfs-org/cfs/internal/runtime"
)

func init() {
	// The container's init changes per-thread state (capability bounding
	// set, cgroup namespace) and forks the user's program from the same
	// thread: keep main on the main OS thread.
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		goruntime.LockOSThread()
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		runtime.Init()
		return
	}
	os.Exit(cli.Main(os.Args[1:]))
}
