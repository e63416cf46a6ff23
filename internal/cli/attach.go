package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/engine"
)

func newAttachCmd(g *globals) *cobra.Command {
	o := engine.AttachOptions{CheckTTY: true}
	var noStdin bool
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			o.Stdin = !noStdin
			code, err := e.Attach(args[0], o, stdio())
			if errors.Is(err, engine.ErrDetached) {
				// Docker prints this and exits 1.
				fmt.Fprintln(g.stderr, err)
				return exitError{1}
			}
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DetachKeys, "detach-keys", "", "override the key sequence for detaching (default ctrl-p,ctrl-q)")
	f.BoolVar(&noStdin, "no-stdin", false, "do not attach stdin")
	f.BoolVar(&o.SigProxy, "sig-proxy", true, "proxy received signals to the container (without a terminal)")
	return cmd
}

func stdio() engine.IO { return engine.IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr} }
