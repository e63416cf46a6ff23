//go:build !cfs_lean

package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/cfs-org/cfs/internal/engine"
	"github.com/cfs-org/cfs/internal/image"
)

// registryFlags are the options every command that talks to a registry
// takes.
type registryFlags struct {
	tlsVerify bool
	authFile  string
	certDir   string
	insecure  []string
	jobs      int
}

func (f *registryFlags) register(fs *pflag.FlagSet) {
	fs.BoolVar(&f.tlsVerify, "tls-verify", true, "require HTTPS and verify certificates (false also allows plain HTTP)")
	fs.StringVar(&f.authFile, "authfile", "", "credentials file (default $REGISTRY_AUTH_FILE, else <root>/auth.json)")
	fs.StringVar(&f.certDir, "cert-dir", "", "directory of extra CA certificates (*.crt) to trust")
	fs.StringSliceVar(&f.insecure, "insecure-registry", nil, "registry (host[:port]) to reach without TLS verification; also \"insecure-registries\" in <root>/registries.json")
}

// authFilePath is where credentials are read and stored.
func (f *registryFlags) authFilePath(e *engine.Engine) string {
	if f.authFile != "" {
		return f.authFile
	}
	if p := os.Getenv("REGISTRY_AUTH_FILE"); p != "" {
		return p
	}
	return filepath.Join(e.Root, "auth.json")
}

// options builds the image package's registry options. The context ends
// on SIGINT/SIGTERM, so an interrupted pull cleans up after itself.
func (f *registryFlags) options(e *engine.Engine, ui *transferUI) (image.RegistryOptions, func(), error) {
	cfg, err := image.ReadRegistriesConfig(e.Root)
	if err != nil {
		return image.RegistryOptions{}, nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	o := image.RegistryOptions{
		AuthFile:           f.authFilePath(e),
		InsecureRegistries: append(cfg.InsecureRegistries, f.insecure...),
		CertDirs:           append([]string{filepath.Join(e.Root, "certs.d")}, image.DefaultCertDirs...),
		CertDir:            f.certDir,
		Jobs:               f.jobs,
		Tracer:             e.Tracer,
		Context:            ctx,
	}
	if !f.tlsVerify {
		v := false
		o.TLSVerify = &v
	}
	if ui != nil {
		o.Progress = ui.event
	}
	return o, stop, nil
}

func newPullCmd(g *globals) *cobra.Command {
	var rf registryFlags
	var platform string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Pull an image from a registry",
		Long: `Pull an image from a registry with the OCI distribution API (Docker Hub when the
name has no registry). Layers already stored are not downloaded; the others are
fetched in parallel, verified against their digests and unpacked as they arrive.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			e, s, err := g.images()
			if err != nil {
				return err
			}
			ui := newTransferUI(cmd.ErrOrStderr(), quiet)
			o, stop, err := rf.options(e, ui)
			if err != nil {
				return err
			}
			defer stop()
			res, err := s.Pull(args[0], image.PullOptions{RegistryOptions: o, Platform: platform})
			ui.wait()
			if err != nil {
				return err
			}
			if !quiet {
				for _, w := range res.Warnings {
					fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: %s\n", w)
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Digest: %s\n", res.Manifest)
				status := "Downloaded newer image"
				if res.Downloaded == 0 {
					status = "Image is up to date"
				}
				what := args[0]
				if res.Image.Name != "" {
					what = res.Image.Name
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "Status: %s for %s (%d layers downloaded, %s; %d already stored)\n",
					status, what, res.Downloaded, humanBytes(res.DownloadedBytes), res.Reused)
			}
			fmt.Fprintln(cmd.OutOrStdout(), res.Image.ID)
			return nil
		},
	}
	rf.register(cmd.Flags())
	cmd.Flags().IntVarP(&rf.jobs, "jobs", "j", 3, "layers to download at once")
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pull from a manifest list (default linux/<host arch>)")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only the image ID")
	return cmd
}
