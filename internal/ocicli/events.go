package ocicli

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/cgroups"
)

// event is runc's events JSON: {"type":"stats"|"oom","id":...,"data":...}.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// statsJSON follows the shape of runc's events --stats data.
type statsJSON struct {
	CPU struct {
		Usage struct {
			Total  uint64 `json:"total"`
			Kernel uint64 `json:"kernel"`
			User   uint64 `json:"user"`
		} `json:"usage"`
		Throttling struct {
			Periods          uint64 `json:"periods"`
			ThrottledPeriods uint64 `json:"throttledPeriods"`
			ThrottledTime    uint64 `json:"throttledTime"`
		} `json:"throttling"`
	} `json:"cpu"`
	Memory struct {
		Usage struct {
			Limit uint64 `json:"limit"`
			Usage uint64 `json:"usage"`
			Max   uint64 `json:"max"`
		} `json:"usage"`
		Swap struct {
			Usage uint64 `json:"usage"`
		} `json:"swap"`
	} `json:"memory"`
	Pids struct {
		Current uint64 `json:"current"`
		Limit   uint64 `json:"limit"`
	} `json:"pids"`
	Blkio struct {
		ReadBytes  uint64 `json:"readBytes"`
		WriteBytes uint64 `json:"writeBytes"`
		ReadOps    uint64 `json:"readOps"`
		WriteOps   uint64 `json:"writeOps"`
	} `json:"blkio"`
}

func toStatsJSON(s *cgroups.Stats) statsJSON {
	var o statsJSON
	o.CPU.Usage.Total, o.CPU.Usage.Kernel, o.CPU.Usage.User = s.CPU.UsageNS, s.CPU.SystemNS, s.CPU.UserNS
	o.CPU.Throttling.Periods, o.CPU.Throttling.ThrottledPeriods, o.CPU.Throttling.ThrottledTime =
		s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledNS
	o.Memory.Usage.Limit, o.Memory.Usage.Usage, o.Memory.Usage.Max = s.Memory.Limit, s.Memory.Usage, s.Memory.MaxUsage
	o.Memory.Swap.Usage = s.Memory.SwapUsage
	o.Pids.Current, o.Pids.Limit = s.Pids.Current, s.Pids.Limit
	o.Blkio.ReadBytes, o.Blkio.WriteBytes, o.Blkio.ReadOps, o.Blkio.WriteOps =
		s.BlkIO.ReadBytes, s.BlkIO.WriteBytes, s.BlkIO.ReadOps, s.BlkIO.WriteOps
	return o
}

func newEventsCmd(g *globals) *cobra.Command {
	var stats bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "events [--stats] [--interval 5s] CONTAINER_ID",
		Short: "print resource usage (and OOM kills) as JSON lines until the container stops",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			st, err := g.state().Load(id)
			if err != nil {
				return err
			}
			if st.Status() == specs.StateStopped {
				return fmt.Errorf("container %s is not running", id)
			}
			cg, err := st.Cgroup()
			if err != nil {
				return err
			}
			enc := json.NewEncoder(os.Stdout)
			var ooms uint64
			for {
				s, err := cg.Stats()
				if err != nil {
					return err
				}
				if stats {
					return enc.Encode(event{Type: "stats", ID: id, Data: toStatsJSON(s)})
				}
				if s.Memory.OOMKills > ooms {
					enc.Encode(event{Type: "oom", ID: id})
					ooms = s.Memory.OOMKills
				}
				if err := enc.Encode(event{Type: "stats", ID: id, Data: toStatsJSON(s)}); err != nil {
					return nil
				}
				time.Sleep(interval)
				if !st.InitAlive() {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVar(&stats, "stats", false, "print the statistics once and exit")
	cmd.Flags().DurationVar(&interval, "interval", 5*time.Second, "time between statistics")
	return cmd
}
