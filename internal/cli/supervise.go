package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/supervisor"
)

// Supervise runs the supervisor of a state root (the hidden entry point
// that `cfs run -d` and `cfs start` spawn on demand) and returns the exit
// code.
func Supervise(root string) int {
	e, err := engine.New(root, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cfs supervisor: %v\n", err)
		return 1
	}
	if err := supervisor.Serve(e.Root, e.Backend()); err != nil && !errors.Is(err, supervisor.ErrRunning) {
		fmt.Fprintf(os.Stderr, "cfs supervisor: %v\n", err)
		return 1
	}
	return 0
}
