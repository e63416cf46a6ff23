package ocicli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
)

func newPsCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "ps [--format table|json] CONTAINER_ID [ps options]",
		Short: "list the processes of a container (ps output, or their pids as JSON)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.state().Load(args[0])
			if err != nil {
				return err
			}
			cg, err := st.Cgroup()
			if err != nil {
				return err
			}
			pids, err := cg.Pids()
			if err != nil {
				return err
			}
			if format == "json" {
				if pids == nil {
					pids = []int{}
				}
				b, _ := json.Marshal(pids)
				os.Stdout.Write(append(b, '\n'))
				return nil
			}
			if format != "table" {
				return fmt.Errorf("--format %q: table or json", format)
			}
			psArgs := args[1:]
			if len(psArgs) == 0 {
				psArgs = []string{"-ef"}
			}
			out, err := exec.Command("ps", psArgs...).Output()
			if err != nil {
				return fmt.Errorf("ps %s: %w", strings.Join(psArgs, " "), err)
			}
			lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
			col := -1
			for i, f := range strings.Fields(lines[0]) {
				if f == "PID" {
					col = i
				}
			}
			if col < 0 {
				return fmt.Errorf("ps output has no PID column")
			}
			want := map[int]bool{}
			for _, p := range pids {
				want[p] = true
			}
			var b bytes.Buffer
			b.WriteString(lines[0] + "\n")
			for _, l := range lines[1:] {
				f := strings.Fields(l)
				if len(f) > col {
					if p, err := strconv.Atoi(f[col]); err == nil && want[p] {
						b.WriteString(l + "\n")
					}
				}
			}
			os.Stdout.Write(b.Bytes())
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "table", "table or json")
	cmd.Flags().SetInterspersed(false)
	return cmd
}
