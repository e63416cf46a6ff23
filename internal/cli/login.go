//go:build !cfs_lean

package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
)

func newLoginCmd(g *globals) *cobra.Command {
	var rf registryFlags
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] REGISTRY",
		Short: "Log in to a registry",
		Long: `Check a user name and password against a registry (basic or bearer-token auth)
and store them in the auth file (containers-auth.json format, mode 0600).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			in := cmd.InOrStdin()
			tty := false
			if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				tty = true
			}
			if passwordStdin {
				if password != "" {
					return errdefs.Invalidf("--password and --password-stdin are exclusive")
				}
				b, err := io.ReadAll(io.LimitReader(in, 64<<10))
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(b), "\r\n")
			}
			if user == "" && tty {
				fmt.Fprint(cmd.ErrOrStderr(), "Username: ")
				line, _ := bufio.NewReader(in).ReadString('\n')
				user = strings.TrimSpace(line)
			}
			if password == "" && tty {
				fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
				b, err := term.ReadPassword(int(in.(*os.File).Fd()))
				fmt.Fprintln(cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				password = string(b)
			}
			if user == "" || password == "" {
				return errdefs.Invalidf("login %s: give --username and --password or --password-stdin", args[0])
			}
			o, stop, err := rf.options(e, nil)
			if err != nil {
				return err
			}
			defer stop()
			if _, err := image.Login(args[0], user, password, o); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded!")
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().StringVarP(&user, "username", "u", "", "user name")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (visible to other users in the process list: prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin")
	return cmd
}

func newLogoutCmd(g *globals) *cobra.Command {
	var authFile string
	var all bool
	cmd := &cobra.Command{
		Use:   "logout [OPTIONS] REGISTRY",
		Short: "Forget the credentials of a registry",
		Args: func(cmd *cobra.Command, args []string) error {
			if all {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			rf := registryFlags{authFile: authFile}
			reg := ""
			if len(args) == 1 {
				reg = args[0]
			}
			if err := image.RemoveAuth(rf.authFilePath(e), reg, all); err != nil {
				return err
			}
			if all {
				fmt.Fprintln(cmd.OutOrStdout(), "Removed login credentials for all registries")
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "Removed login credentials for %s\n", reg)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&authFile, "authfile", "", "credentials file (default $REGISTRY_AUTH_FILE, else <root>/auth.json)")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "forget every registry")
	return cmd
}
