package ocicli

import (
	"encoding/json"
	"os"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/runtime"
)

// stateJSON is the OCI state (state.md) plus runc's extra fields, which
// clients such as Podman read.
type stateJSON struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

func toStateJSON(st *runtime.ContainerState) stateJSON {
	return stateJSON{State: *st.OCI(), Rootfs: st.Rootfs, Created: st.Created, Owner: st.Owner}
}

func newStateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "state CONTAINER_ID",
		Short: "print the state of a container as JSON (runtime-spec state)",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := g.state().Load(args[0])
			if err != nil {
				return err
			}
			b, err := json.MarshalIndent(toStateJSON(st), "", "  ")
			if err != nil {
				return err
			}
			os.Stdout.Write(append(b, '\n'))
			return nil
		},
	}
}
