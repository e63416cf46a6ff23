//go:build !cfs_lean

package cli

import "github.com/spf13/cobra"

// transferCommands are the commands that move images in and out of the
// store (see transferShort). Their packages (the registry client, TLS,
// the compressors, progress bars) cost about 1 ms of initialisation in
// every process that links them, so the lean front end leaves them to
// this, the full build (transfer_lean.go).
var transferCommands = map[string]func(*globals) *cobra.Command{
	"pull": newPullCmd, "push": newPushCmd, "login": newLoginCmd, "logout": newLogoutCmd,
	"import": newImportCmd, "save": newSaveCmd, "load": newLoadCmd, "commit": newCommitCmd,
}
