package engine

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/image"
	"github.com/cfs-org/cfs/internal/mount"
	"github.com/cfs-org/cfs/internal/runtime"
	"github.com/cfs-org/cfs/internal/store"
)

// prepared is a container as options make it, before anything exists on
// disk: every path is known, so the spec is complete.
type prepared struct {
	id, dir, rootfs string
	opts            *RunOptions
	parsed          *parsed
	img             *image.Image
	rec             *store.Record
	cc              containerConfig
	spec            *specs.Spec
	specJSON        []byte // set by materializeFiles
	rootfsMounts    []mount.Mount
	etc             [][2]string
	resources       *specs.LinuxResources
}

// prepare validates o and builds the container's record and spec. Nothing
// is created. width and height size a terminal (0: unknown).
func (e *Engine) prepare(o *RunOptions, width, height uint) (*prepared, error) {
	p, err := o.validate()
	if err != nil {
		return nil, err
	}
	restart, err := ParseRestartPolicy(o.Restart)
	if err != nil {
		return nil, err
	}
	if restart.Name != "no" && o.Remove {
		return nil, errdefs.Invalidf("--restart %s and --rm: conflicting options (a removed container cannot restart)", o.Restart)
	}
	images, err := e.Images()
	if err != nil {
		return nil, err
	}
	img, err := images.Get(o.Image)
	if err != nil {
		return nil, err
	}
	id := store.NewID()
	hostname := o.Hostname
	if hostname == "" {
		hostname = id[:12]
		if o.Network == "host" {
			hostname, _ = os.Hostname()
		}
	}
	userSpec := img.Config.Config.User
	if o.User != "" {
		userSpec = o.User
	}
	user, err := e.lookupUser(userSpec, img)
	if err != nil {
		return nil, err
	}
	resources, err := o.Resources.Spec()
	if err != nil {
		return nil, err
	}
	cgroupParent := "/cfs"
	if o.Resources.CgroupParent != "" {
		cgroupParent = "/" + strings.Trim(path.Clean("/"+o.Resources.CgroupParent), "/")
	}
	network := o.Network
	if network == "" {
		network = "none"
	}
	cc := containerConfig{Hostname: hostname, Network: network, Userns: o.Userns, Cgroup: path.Join(cgroupParent, id),
		AutoRemove: o.Remove, TTY: o.TTY, Resources: o.Resources.persisted(),
		Restart: restart, LogOpts: o.LogOpts, Interactive: o.Interactive, StopSignal: img.Config.Config.StopSignal}
	for _, v := range p.volumes {
		cc.Volumes = append(cc.Volumes, v.String())
	}
	extra, _ := json.Marshal(cc)
	dir := e.Containers.Dir(id)
	pr := &prepared{
		id: id, dir: dir, rootfs: filepath.Join(dir, "rootfs"), opts: o, parsed: p, img: img, cc: cc,
		etc: etcFiles(dir), resources: resources,
		rec: &store.Record{
			ID: id, Name: o.Name, Image: o.Image, ImageID: img.ID.String(),
			Command: processArgs(img.Config.Config, o), Created: time.Now().UTC(),
			State: store.State{Status: store.StatusCreated}, Labels: img.Config.Config.Labels, Extra: extra,
		},
	}
	pr.spec = buildSpec(&specInput{
		ID: id, Opts: o, Parsed: p, Image: img.Config.Config, User: user, Rootfs: pr.rootfs,
		Hostname: hostname, EtcFiles: pr.etc, Cgroup: cc.Cgroup, Resources: resources,
		Width: width, Height: height,
	})
	return pr, nil
}

// materialize creates the container on disk: its record (reserving the
// name), then its files (materializeFiles). On error the caller removes
// the container.
func (e *Engine) materialize(pr *prepared) error {
	if err := e.materializeRecord(pr); err != nil {
		return err
	}
	return e.materializeFiles(pr)
}

// materializeRecord writes the container's record, which reserves its name
// and must exist before anything else of the container does (its cgroup
// above all: rm -f finds everything through the record).
func (e *Engine) materializeRecord(pr *prepared) error {
	if err := e.Containers.Create(pr.rec); err != nil {
		return err
	}
	fault("create:after-record")
	return nil
}

// materializeFiles creates the container's volume sources, /etc files,
// writable layer directories (pr.rootfsMounts mount them), rootfs mount
// point and config.json, encoding the spec (pr.specJSON).
func (e *Engine) materializeFiles(pr *prepared) (err error) {
	if pr.specJSON, err = json.Marshal(pr.spec); err != nil {
		return err
	}
	for _, v := range pr.parsed.volumes {
		if err := os.MkdirAll(v.Source, 0o755); err != nil {
			return errdefs.Invalidf("--volume %s: %v", v, err)
		}
	}
	if err := writeEtcFiles(pr.etc, pr.cc.Hostname, pr.cc.Network); err != nil {
		return err
	}
	if pr.opts.Userns == "remap" {
		// The container's root mounts its overlay from inside its user
		// namespace: it must traverse (not list) its directory.
		if err := os.Chmod(pr.dir, 0o711); err != nil {
			return err
		}
	}
	if pr.rootfsMounts, err = e.Snapshots.Prepare(pr.dir, pr.img.Layers, pr.rootUID(), pr.rootUID()); err != nil {
		return err
	}
	if err := os.Mkdir(pr.rootfs, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	if err := os.WriteFile(filepath.Join(pr.dir, "config.json"), pr.specJSON, 0o600); err != nil {
		return err
	}
	fault("create:after-files")
	return nil
}

// rootUID is the host uid of the container's root (its writable layer's
// owner).
func (pr *prepared) rootUID() int {
	if pr.opts.Userns == "remap" {
		return int(RemapRange.HostID)
	}
	return 0
}

// Create makes a container without starting it (`cfs create`).
func (e *Engine) Create(o *RunOptions) (_ *store.Record, err error) {
	pr, err := e.prepare(o, 0, 0)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			e.Snapshots.Remove(pr.dir)
			e.Containers.Delete(pr.id)
		}
	}()
	if err := e.materialize(pr); err != nil {
		return nil, err
	}
	return pr.rec, nil
}

// setup runs the runtime's Setup with the cgroup layout the container's
// resources need (net_cls/net_prio may need our own mount).
func (e *Engine) setup(ctr *runtime.Container, cfg *runtime.Config) error {
	resources := cfg.Spec.Linux.Resources
	host, unlock, err := cgroupHostFor(resources, e.Tracer)
	if err != nil {
		return err
	}
	cfg.CgroupHost = host
	err = ctr.Setup(cfg)
	unlock()
	if err != nil && usesNetCgroup(resources) {
		releaseNetCgroups(e.Tracer)
	}
	return err
}

// teardown kills what is left of a container's processes, removes its
// cgroup and releases the net_cls/net_prio mounts its limits needed.
func (e *Engine) teardown(ctr *runtime.Container, spec *specs.Spec) error {
	err := ctr.Destroy()
	if spec != nil && spec.Linux != nil && usesNetCgroup(spec.Linux.Resources) {
		releaseNetCgroups(e.Tracer)
	}
	return err
}
