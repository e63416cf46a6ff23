package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/template"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
)

// imageInspect is `cfs image inspect`'s view of an image: Docker's field
// names, plus the manifest and each layer as stored.
type imageInspect struct {
	ID           string              `json:"Id"`
	RepoTags     []string            `json:"RepoTags"`
	RepoDigests  []string            `json:"RepoDigests"`
	Created      *time.Time          `json:"Created,omitempty"`
	Author       string              `json:"Author,omitempty"`
	Config       ocispec.ImageConfig `json:"Config"`
	Architecture string              `json:"Architecture"`
	Variant      string              `json:"Variant,omitempty"`
	Os           string              `json:"Os"`
	Size         int64               `json:"Size"`
	RootFS       struct {
		Type   string          `json:"Type"`
		Layers []digest.Digest `json:"Layers"`
	} `json:"RootFS"`
	History  []ocispec.History `json:"History,omitempty"`
	Manifest struct {
		Digest    digest.Digest `json:"Digest"`
		MediaType string        `json:"MediaType"`
	} `json:"Manifest"`
	Layers []image.LayerInfo `json:"Layers"`
}

func inspectImage(d *image.Details) *imageInspect {
	v := &imageInspect{ID: d.ID.String(), RepoTags: d.Names, Created: d.Config.Created, Author: d.Config.Author,
		Config: d.Config.Config, Architecture: d.Config.Architecture, Variant: d.Config.Variant, Os: d.Config.OS,
		Size: d.Size, History: d.Config.History, Layers: d.Layers}
	if v.RepoTags == nil {
		v.RepoTags = []string{}
	}
	v.RepoDigests = []string{}
	seen := map[string]bool{}
	for _, n := range d.Names {
		repo := n[:strings.LastIndex(n, ":")]
		if !seen[repo] {
			seen[repo] = true
			v.RepoDigests = append(v.RepoDigests, repo+"@"+d.Manifest.String())
		}
	}
	v.RootFS.Type = d.Config.RootFS.Type
	v.RootFS.Layers = d.Config.RootFS.DiffIDs
	v.Manifest.Digest, v.Manifest.MediaType = d.Manifest, d.ManifestMediaType
	return v
}

func newImageInspectCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] IMAGE [IMAGE...]",
		Short: "Show images as JSON (config, manifest, layers)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var tmpl *template.Template
			if format != "" {
				var err error
				tmpl, err = template.New("format").Funcs(template.FuncMap{
					"json": func(v any) (string, error) { b, err := json.Marshal(v); return string(b), err },
					"join": strings.Join,
				}).Parse(format)
				if err != nil {
					return errdefs.Invalidf("--format: %v", err)
				}
			}
			_, s, err := g.images()
			if err != nil {
				return err
			}
			out := []any{}
			var errs []error
			for _, ref := range args {
				d, err := s.Inspect(ref)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				v := inspectImage(d)
				if tmpl != nil {
					// Templates see the JSON field names: {{.Id}}, {{.Config.Env}}.
					var m map[string]any
					b, _ := json.Marshal(v)
					json.Unmarshal(b, &m)
					if err := tmpl.Execute(cmd.OutOrStdout(), m); err != nil {
						return errdefs.Invalidf("--format: %v", err)
					}
					fmt.Fprintln(cmd.OutOrStdout())
					continue
				}
				out = append(out, v)
			}
			if tmpl == nil {
				b, _ := json.MarshalIndent(out, "", "    ")
				fmt.Fprintln(cmd.OutOrStdout(), string(b))
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Go template applied to each image, e.g. '{{.Id}}' or '{{json .Config}}'")
	return cmd
}
