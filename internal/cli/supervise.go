package cli

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

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
	// A spare init for the next run -d (engine/spare_linux.go), destroyed
	// with its cgroup when the supervisor exits.
	e.EnableSpares()
	defer e.CloseSpares()
	// Killed politely, it removes its spare and its files first (a
	// SIGKILL leaves the spare's cgroup to the next cfs command's sweep,
	// its files to the next supervisor). The containers it supervised
	// run on, as before.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		sig := <-sigs
		e.CloseSpares()
		supervisor.RemoveOwnFiles(e.Root)
		os.Exit(128 + int(sig.(syscall.Signal)))
	}()
	if err := supervisor.Serve(e.Root, e.Backend()); err != nil && !errors.Is(err, supervisor.ErrRunning) {
		fmt.Fprintf(os.Stderr, "cfs supervisor: %v\n", err)
		return 1
	}
	return 0
}
