package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newStopCmd(g *globals) *cobra.Command {
	var seconds int
	var signal string
	cmd := &cobra.Command{
		Use:   "stop [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop running containers: the stop signal, then SIGKILL after a grace period",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(e *engine.Engine, ref string) error {
				_, err := e.Stop(ref, time.Duration(seconds)*time.Second, signal)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&seconds, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "signal to send (default: the image's StopSignal, else SIGTERM)")
	return cmd
}

func newKillCmd(g *globals) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Send a signal (default SIGKILL) to running containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(e *engine.Engine, ref string) error {
				_, err := e.Kill(ref, signal)
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "KILL", "signal to send")
	return cmd
}

func newRestartCmd(g *globals) *cobra.Command {
	var seconds int
	cmd := &cobra.Command{
		Use:   "restart [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Stop and start containers again",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return eachContainer(g, cmd, args, func(e *engine.Engine, ref string) error {
				if _, err := e.Stop(ref, time.Duration(seconds)*time.Second, ""); err != nil {
					return err
				}
				_, err := e.Start(ref)
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&seconds, "time", "t", 10, "seconds to wait for the stop before killing the container")
	return cmd
}

func newWaitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Wait until containers stop, then print their exit codes",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range args {
				code, err := e.Wait(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), code)
			}
			return errors.Join(errs...)
		},
	}
}
