package ocicli

import (
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

func newRunCmd(g *globals) *cobra.Command {
	var o createOpts
	var detach bool
	cmd := &cobra.Command{
		Use:   "run [flags] CONTAINER_ID",
		Short: "create and start a container; without --detach, wait for it and delete it",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			// Catch signals from the start: they are forwarded to the
			// container once it runs.
			sigs := make(chan os.Signal, 64)
			if !detach {
				// The usual ones now; the other ~60 in the background,
				// since each costs the Go runtime a thread hand-off.
				signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT)
				go signal.Notify(sigs)
			}
			c, err := createContainer(g, id, &o, !detach)
			if err != nil {
				return err
			}
			if err := startContainer(g, c.st); err != nil {
				destroyContainer(g, c.st, true)
				c.release()
				return err
			}
			if detach {
				c.release()
				return nil
			}
			c.lock.Unlock()
			if c.pty != nil {
				restore := attachTerminal(c.pty)
				defer restore()
			}
			go func() {
				for s := range sigs {
					switch s {
					case syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE:
						continue
					case syscall.SIGWINCH:
						if c.pty != nil {
							resizeFrom(c.pty, os.Stdin)
						}
						continue
					}
					unix.Kill(c.st.Pid, s.(syscall.Signal))
				}
			}()
			code, _ := c.ctr.Wait()
			signal.Stop(sigs)
			if lock, err := g.state().Lock(id); err == nil {
				destroyContainer(g, c.st, true)
				lock.Unlock()
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	o.flags(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "do not wait for the container")
	return cmd
}

// attachTerminal connects our stdin and stdout to a pty master (run or
// exec with a terminal and no console socket), in raw mode when stdin is
// a terminal. It returns how to restore the terminal.
func attachTerminal(pty *os.File) func() {
	restore := func() {}
	if term.IsTerminal(int(os.Stdin.Fd())) {
		if st, err := term.MakeRaw(int(os.Stdin.Fd())); err == nil {
			restore = func() { term.Restore(int(os.Stdin.Fd()), st) }
		}
		resizeFrom(pty, os.Stdin)
	}
	go io.Copy(pty, os.Stdin)
	go io.Copy(os.Stdout, pty)
	return restore
}

func resizeFrom(pty, tty *os.File) {
	if ws, err := unix.IoctlGetWinsize(int(tty.Fd()), unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(pty.Fd()), unix.TIOCSWINSZ, ws)
	}
}
