package engine

import (
	"encoding/json"
	"path/filepath"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
)

// CommitOptions tunes Commit.
type CommitOptions struct {
	Author  string
	Message string
	// Changes are Dockerfile instructions applied to the image config:
	// CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME.
	Changes []string
}

// Commit stores a container's changes (its overlay upper dir) as a new
// image on top of the container's image, named name ("" for untagged). A
// --userns remap container's files get back the owners it saw.
func (e *Engine) Commit(container, name string, o CommitOptions) (*image.Image, error) {
	r, err := e.Containers.Get(container)
	if err != nil {
		return nil, err
	}
	s, err := e.Images()
	if err != nil {
		return nil, err
	}
	base, err := s.Get(r.ImageID)
	if err != nil {
		return nil, errdefs.NotFoundf("container %s: its image %s is gone: %v", r.Name, r.ImageID, err)
	}
	cfg := base.Config.Config
	if err := applyChanges(&cfg, o.Changes); err != nil {
		return nil, err
	}
	createdBy := "cfs commit " + r.Name
	if len(r.Command) > 0 {
		createdBy += ": " + strings.Join(r.Command, " ")
	}
	return s.Commit(image.CommitOptions{
		Base:      r.ImageID,
		Name:      name,
		Upper:     e.upperOf(r.ID, r.Extra),
		Author:    o.Author,
		Comment:   o.Message,
		CreatedBy: createdBy,
		Config:    &cfg,
		Tracer:    e.Tracer,
	})
}

// upperOf is a container's writable layer and the id shift of its files.
func (e *Engine) upperOf(id string, extra json.RawMessage) image.TreeSource {
	var cc containerConfig
	json.Unmarshal(extra, &cc)
	src := image.TreeSource{Dir: filepath.Join(e.Containers.Dir(id), "upper"),
		MountPoints: []string{"etc/hostname", "etc/hosts", "etc/resolv.conf"}}
	if cc.Userns == "remap" {
		// The runtime mounts its overlay with "userxattr".
		src.IDShift, src.UserXattr = int(RemapRange.HostID), true
	}
	return src
}

// applyChanges applies Dockerfile-style instructions to cfg.
func applyChanges(cfg *ocispec.ImageConfig, changes []string) error {
	for _, c := range changes {
		instr, arg, _ := strings.Cut(strings.TrimSpace(c), " ")
		arg = strings.TrimSpace(arg)
		switch strings.ToUpper(instr) {
		case "CMD":
			cfg.Cmd = commandForm(arg)
		case "ENTRYPOINT":
			cfg.Entrypoint = commandForm(arg)
		case "WORKDIR":
			cfg.WorkingDir = arg
		case "USER":
			cfg.User = arg
		case "STOPSIGNAL":
			cfg.StopSignal = arg
		case "ENV":
			for _, kv := range keyValues(arg) {
				k, _, _ := strings.Cut(kv, "=")
				out := cfg.Env[:0:0]
				for _, old := range cfg.Env {
					if !strings.HasPrefix(old, k+"=") {
						out = append(out, old)
					}
				}
				cfg.Env = append(out, kv)
			}
		case "LABEL":
			for _, kv := range keyValues(arg) {
				k, v, _ := strings.Cut(kv, "=")
				if cfg.Labels == nil {
					cfg.Labels = map[string]string{}
				}
				cfg.Labels[k] = v
			}
		case "EXPOSE":
			for _, p := range strings.Fields(arg) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				if cfg.ExposedPorts == nil {
					cfg.ExposedPorts = map[string]struct{}{}
				}
				cfg.ExposedPorts[p] = struct{}{}
			}
		case "VOLUME":
			for _, v := range commandForm(arg) {
				if cfg.Volumes == nil {
					cfg.Volumes = map[string]struct{}{}
				}
				cfg.Volumes[v] = struct{}{}
			}
		default:
			return errdefs.Invalidf("--change %q: unsupported instruction (CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME)", c)
		}
	}
	return nil
}

// commandForm parses the JSON form (["a", "b"]) or the shell form.
func commandForm(arg string) []string {
	var out []string
	if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &out) == nil {
		return out
	}
	return []string{"/bin/sh", "-c", arg}
}

// keyValues splits "k=v k2=\"v 2\"" (or the legacy "k v") into k=v pairs.
func keyValues(arg string) []string {
	if k, v, ok := strings.Cut(arg, " "); ok && !strings.Contains(k, "=") {
		return []string{k + "=" + strings.TrimSpace(v)}
	}
	var out []string
	var cur strings.Builder
	quote := rune(0)
	for _, r := range arg {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '"' || r == '\''):
			quote = r
		case quote == 0 && r == ' ':
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
