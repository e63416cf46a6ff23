//go:build cfs_lean

package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/fullbin"
)

// transferCommands, in the lean front end, hand their whole command line
// to the full cfs it carries (internal/fullbin), which then runs in this
// process's place: same pid, standard streams, signals and exit status.
var transferCommands = map[string]func(*globals) *cobra.Command{}

func init() {
	for w := range transferShort {
		transferCommands[w] = forwarder(w)
	}
}

func forwarder(word string) func(*globals) *cobra.Command {
	return func(*globals) *cobra.Command {
		return &cobra.Command{
			Use:   word,
			Short: transferShort[word],
			// Flags, --help included, are the full cfs's to parse.
			DisableFlagParsing: true,
			RunE: func(*cobra.Command, []string) error {
				return fullbin.Exec(os.Args)
			},
		}
	}
}
