package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newStartCmd(g *globals) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more created or stopped containers",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			if attach || interactive {
				// As Docker: -i attaches too.
				if len(args) > 1 {
					return usageError{errors.New("you cannot start and attach multiple containers at once")}
				}
				o := engine.AttachOptions{Stdin: interactive, StdinOnce: true, DetachKeys: detachKeys, SigProxy: true}
				code, err := e.StartAttach(args[0], o, stdio())
				if errors.Is(err, engine.ErrDetached) {
					return nil // Docker: detaching from start -ai is a success
				}
				if err != nil {
					return err
				}
				if code != 0 {
					return exitError{code}
				}
				return nil
			}
			var errs []error
			for _, ref := range args {
				if _, err := e.Start(ref); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), ref)
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&attach, "attach", "a", false, "attach stdout and stderr, forward signals, and exit with the container's status")
	f.BoolVarP(&interactive, "interactive", "i", false, "attach the container's stdin")
	f.StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching (default ctrl-p,ctrl-q)")
	return cmd
}
