package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"
)

func newSystemBootCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "boot",
		Short: "Start the containers whose restart policy is always or unless-stopped (run at host start-up)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.engine()
			if err != nil {
				return err
			}
			started, errs := e.Boot()
			for _, id := range started {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return errors.Join(errs...)
		},
	}
}

// unitFile runs `cfs system boot` at start-up. Type=oneshot with
// KillMode=process: the supervisor that boot starts outlives the unit's
// main process (the containers themselves live in their own cgroups).
const unitFile = `[Unit]
Description=cfs: start containers with restart policy always or unless-stopped
Wants=network-online.target
After=network-online.target local-fs.target

[Service]
Type=oneshot
RemainAfterExit=yes
KillMode=process
Environment=CFS_ROOT=%s
ExecStart=%s system boot

[Install]
WantedBy=multi-user.target
`

func newSystemUnitCmd(g *globals) *cobra.Command {
	var install bool
	cmd := &cobra.Command{
		Use:   "unit [--install]",
		Short: "Print (or install) a systemd unit that runs `cfs system boot` at host start-up",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			root, err := filepath.Abs(g.root)
			if err != nil {
				return err
			}
			unit := fmt.Sprintf(unitFile, root, exe)
			if !install {
				fmt.Fprint(cmd.OutOrStdout(), unit)
				return nil
			}
			path := "/etc/systemd/system/cfs-boot.service"
			if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
				return fmt.Errorf("install %s: %w", path, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), "wrote", path)
			if _, err := exec.LookPath("systemctl"); err != nil {
				fmt.Fprintln(cmd.OutOrStdout(), "systemctl not found: enable it with your init system")
				return nil
			}
			out, err := exec.Command("systemctl", "enable", "cfs-boot.service").CombinedOutput()
			if err != nil {
				return fmt.Errorf("systemctl enable cfs-boot.service: %v: %s", err, out)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&install, "install", false, "write /etc/systemd/system/cfs-boot.service and enable it")
	return cmd
}
