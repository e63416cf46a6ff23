// Command cfs-runtime is cfs's OCI runtime alone: the same internal/ocicli
// and internal/runtime code that bin/cfs runs when invoked as cfs-runtime,
// without the engine's dependencies (registry client, compressors, ...).
// Both processes of a container start, the runtime and the container's
// init (this binary re-executed), skip their package initializers and
// fault in a 5 MB binary instead of a 12 MB one: about 4 ms less per
// `cfs-runtime run` on the development VM (see test/oci/README-section.md).
// `make build` may install it as bin/cfs-runtime instead of the symlink.
package main

import (
	"os"
	goruntime "runtime"

	"github.com/cfs-org/cfs/internal/ocicli"
	"github.com/cfs-org/cfs/internal/runtime"
)

func init() {
	// As in cmd/cfs: main keeps the main thread (init changes per-thread
	// state and forks the program from it; the runtime's throw-away
	// threads must never be it).
	goruntime.LockOSThread()
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == runtime.InitArg {
		runtime.Init()
		return
	}
	if len(os.Args) > 1 && os.Args[1] == runtime.UsernsArg {
		runtime.HoldUserns()
	}
	os.Exit(ocicli.Main(os.Args[1:]))
}
