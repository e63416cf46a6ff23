// Command cfs-init is the container's init alone: what bin/cfs runs when it
// re-executes itself as a container's init, without the engine, the CLI and
// their dependencies. `make build` embeds it in bin/cfs (internal/initbin),
// which then starts every container's init from it: a quarter of the
// binary's size to fault in and none of the engine's package initializers
// (registry client, compressors, digests), on the critical path of every
// container start. Built alone it is of no use to a person.
package main

import (
	"fmt"
	"os"
	goruntime "runtime"

	"github.com/cfs-org/cfs/internal/runtime"
)

func init() {
	// As in cmd/cfs: init changes per-thread state (capability bounding
	// set, cgroup namespace) and forks the program from the main thread.
	goruntime.LockOSThread()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		runtime.Init()
		return
	}
	fmt.Fprintln(os.Stderr, "cfs-init is the init of cfs's containers; cfs starts it, not a person")
	os.Exit(2)
}
