package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// newImageCmd is `cfs image ...`: the image verbs under one noun, as
// Docker has them.
func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "image", Short: "Manage images", Args: cobra.NoArgs}
	rename := func(c *cobra.Command, use string, aliases ...string) *cobra.Command {
		c.Use = use + strings.TrimPrefix(c.Use, strings.Fields(c.Use)[0])
		c.Aliases = aliases
		return c
	}
	cmd.AddCommand(
		newImageInspectCmd(g), newImagePruneCmd(g),
		rename(newImagesCmd(g), "ls", "list"),
		rename(newRmiCmd(g), "rm", "remove"),
		newTagCmd(g), newHistoryCmd(g),
	)
	// The lean front end hands these to the full cfs (transfer_lean.go).
	for _, w := range []string{"pull", "push", "save", "load", "import"} {
		cmd.AddCommand(transferCommands[w](g))
	}
	return cmd
}
