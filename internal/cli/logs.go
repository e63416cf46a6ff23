package cli

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/logs"
)

func newLogsCmd(g *globals) *cobra.Command {
	var follow, timestamps bool
	var tail, since, until string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Long: "Print a container's output: what it wrote to stdout goes to stdout, what it wrote to\n" +
			"stderr to stderr. The log is read from files, so it works after the container exited\n" +
			"and with no cfs process running. --since and --until take an RFC 3339 time\n" +
			"(2024-05-01T12:00:00Z, 2024-05-01), a Unix timestamp, or a duration before now (10m).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := logReadOptions(tail, since, until, time.Now())
			if err != nil {
				return err
			}
			o.Follow, o.Timestamps = follow, timestamps
			e, err := g.engine()
			if err != nil {
				return err
			}
			rec, err := e.Containers.Get(args[0])
			if err != nil {
				return err
			}
			id := rec.ID
			if follow {
				// Following ends once the container stopped (or was
				// removed) and its log is drained.
				o.Done = func() bool {
					r, err := e.Containers.Get(id)
					return err != nil || !e.Refresh(r).State.Running
				}
			}
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			err = logs.Read(ctx, e.Containers.Dir(id), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if errors.Is(err, context.Canceled) {
				return nil // ctrl-C ends following
			}
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow log output until the container stops")
	f.StringVarP(&tail, "tail", "n", "all", `number of lines to show from the end of the logs, or "all"`)
	f.StringVar(&since, "since", "", "show logs since a time (2024-05-01T12:00:00Z, a Unix timestamp) or for a duration (10m)")
	f.StringVar(&until, "until", "", "show logs before a time (2024-05-01T12:00:00Z, a Unix timestamp) or a duration ago (10m)")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	return cmd
}

// logReadOptions parses --tail, --since and --until.
func logReadOptions(tail, since, until string, now time.Time) (logs.ReadOptions, error) {
	o := logs.ReadOptions{Tail: -1, Stdout: true, Stderr: true}
	if tail = strings.TrimSpace(tail); tail != "" && tail != "all" {
		n, err := strconv.Atoi(tail)
		if err != nil {
			return o, errdefs.Invalidf("invalid --tail %q: want a number of lines or \"all\"", tail)
		}
		o.Tail = max(n, -1)
	}
	var err error
	if o.Since, err = logs.ParseTime(since, now); err != nil {
		return o, errdefs.Invalidf("--since: %v", err)
	}
	if o.Until, err = logs.ParseTime(until, now); err != nil {
		return o, errdefs.Invalidf("--until: %v", err)
	}
	return o, nil
}
