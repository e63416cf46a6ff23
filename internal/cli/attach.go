package cli

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/logs"
)

// followUntilExit streams a detached container's output from now on until
// it stops, then exits with its status (`start -a`).
func followUntilExit(cmd *cobra.Command, e *engine.Engine, id string, since time.Time) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := func() bool {
		r, err := e.Containers.Get(id)
		return err != nil || !e.Refresh(r).State.Running
	}
	err := logs.Read(ctx, e.Containers.Dir(id), logs.ReadOptions{
		Follow: true, Tail: -1, Since: since, Stdout: true, Stderr: true, Done: done,
	}, cmd.OutOrStdout(), os.Stderr)
	if err != nil {
		return err
	}
	code, err := e.Wait(id)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitError{code}
	}
	return nil
}
