package engine

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/store"
)

// ContainerJSON is `cfs inspect`'s view of a container, in Docker's field
// names where Docker has them.
type ContainerJSON struct {
	ID           string      `json:"Id"`
	Created      time.Time   `json:"Created"`
	Path         string      `json:"Path"`
	Args         []string    `json:"Args"`
	State        store.State `json:"State"`
	Image        string      `json:"Image"`
	ImageName    string      `json:"ImageName"`
	Name         string      `json:"Name"`
	RestartCount int         `json:"RestartCount"`
	StateDir     string      `json:"StateDir"`
	HostConfig   struct {
		NetworkMode    string   `json:"NetworkMode"`
		UsernsMode     string   `json:"UsernsMode"`
		AutoRemove     bool     `json:"AutoRemove"`
		Binds          []string `json:"Binds"`
		ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
		CgroupPath     string   `json:"CgroupParent"`
		// The limits, flattened in Docker's HostConfig names (Memory,
		// NanoCpus, PidsLimit, ...).
		ResourceOptions
		RestartPolicy RestartPolicy `json:"RestartPolicy"`
		LogConfig     struct {
			Type   string   `json:"Type"`
			Config []string `json:"Config"`
		} `json:"LogConfig"`
	} `json:"HostConfig"`
	Config struct {
		Hostname   string            `json:"Hostname"`
		User       string            `json:"User"`
		Tty        bool              `json:"Tty"`
		Env        []string          `json:"Env"`
		Cmd        []string          `json:"Cmd"`
		WorkingDir string            `json:"WorkingDir"`
		Labels     map[string]string `json:"Labels"`
	} `json:"Config"`
	Spec *specs.Spec `json:"OCISpec,omitempty"`
}

// Inspect returns a container's record and configuration.
func (e *Engine) Inspect(ref string) (*ContainerJSON, error) {
	r, err := e.Containers.Get(ref)
	if err != nil {
		return nil, err
	}
	r = e.Refresh(r)
	var cc containerConfig
	json.Unmarshal(r.Extra, &cc)
	out := &ContainerJSON{ID: r.ID, Created: r.Created, State: r.State, Image: r.ImageID,
		ImageName: r.Image, Name: "/" + r.Name, StateDir: e.Containers.Dir(r.ID)}
	if len(r.Command) > 0 {
		out.Path, out.Args = r.Command[0], r.Command[1:]
	}
	out.HostConfig.NetworkMode = cc.Network
	out.HostConfig.UsernsMode = cc.Userns
	out.HostConfig.AutoRemove = cc.AutoRemove
	out.HostConfig.RestartPolicy = cc.Restart
	out.HostConfig.LogConfig.Type, out.HostConfig.LogConfig.Config = "json-file", cc.LogOpts
	out.RestartCount = cc.RestartCount
	out.HostConfig.Binds = cc.Volumes
	out.HostConfig.CgroupPath = cc.Cgroup
	if cc.Resources != nil {
		out.HostConfig.ResourceOptions = *cc.Resources
		out.HostConfig.ResourceOptions.CgroupParent = ""
	}
	out.Config.Hostname = cc.Hostname
	out.Config.Tty = cc.TTY
	out.Config.Labels = r.Labels
	out.Config.Cmd = r.Command
	if b, err := os.ReadFile(filepath.Join(e.Containers.Dir(r.ID), "config.json")); err == nil {
		var s specs.Spec
		if json.Unmarshal(b, &s) == nil {
			out.Spec = &s
			if s.Process != nil {
				out.Config.Env = s.Process.Env
				out.Config.WorkingDir = s.Process.Cwd
				out.Config.User = formatUser(s.Process.User)
			}
			if s.Root != nil {
				out.HostConfig.ReadonlyRootfs = s.Root.Readonly
			}
		}
	}
	return out, nil
}

func formatUser(u specs.User) string {
	b, _ := json.Marshal(u.UID)
	g, _ := json.Marshal(u.GID)
	return string(b) + ":" + string(g)
}
