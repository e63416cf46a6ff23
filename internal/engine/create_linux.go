package engine

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
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
	width, height   uint // the terminal's size (0: unknown)
	// recordSynced delivers the result of the record's fsync, which runs
	// beside the start (materializeRecord); durable waits for it.
	recordSynced chan error
	syncErr      error
}

// durable waits until the container's record is on disk (see
// store.CreateUnsynced): before the container is reported created.
func (pr *prepared) durable() error {
	if pr.recordSynced != nil {
		pr.syncErr = <-pr.recordSynced
		pr.recordSynced = nil
		if pr.syncErr != nil {
			pr.syncErr = fmt.Errorf("sync record of container %s: %w", pr.id, pr.syncErr)
		}
	}
	return pr.syncErr
}

// prepare validates o and builds the container's record and spec. Nothing
// is created. width and height size a terminal (0: unknown).
func (e *Engine) prepare(o *RunOptions, width, height uint) (*prepared, error) {
	pr, err := e.prepareBase(o, width, height)
	if err != nil {
		return nil, err
	}
	ir, err := e.resolveImage(pr)
	if err != nil {
		return nil, err
	}
	pr.apply(ir)
	return pr, nil
}

// prepareBase is prepare without the image: the record lacks the image's
// ID, command, labels and stop signal, and the spec is a skeleton whose
// namespaces, id maps, cgroup, resources and terminal are final (all that
// runtime.Spawn needs) but whose process is not.
func (e *Engine) prepareBase(o *RunOptions, width, height uint) (*prepared, error) {
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
	id := o.id
	if id == "" {
		id = store.NewID()
	}
	hostname := o.Hostname
	if hostname == "" {
		hostname = id[:12]
		if o.Network == "host" {
			hostname, _ = os.Hostname()
		}
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
		Restart: restart, LogOpts: o.LogOpts, Interactive: o.Interactive}
	for _, v := range p.volumes {
		cc.Volumes = append(cc.Volumes, v.String())
	}
	extra, _ := json.Marshal(cc)
	dir := e.Containers.Dir(id)
	if o.dir != "" {
		dir = o.dir
	}
	pr := &prepared{
		id: id, dir: dir, rootfs: e.rootfsMountPoint(), opts: o, parsed: p, cc: cc,
		etc: etcFiles(dir), resources: resources, width: width, height: height,
		rec: &store.Record{
			ID: id, Name: o.Name, Image: o.Image, Created: time.Now().UTC(),
			State: store.State{Status: store.StatusCreated}, Extra: extra,
		},
	}
	pr.spec = pr.buildSpec(ocispec.ImageConfig{}, resolvedUser{})
	return pr, nil
}

// imageResult is what the image adds to a prepared container.
type imageResult struct {
	img   *image.Image
	spec  *specs.Spec
	extra []byte
}

// resolveImage finds pr's image and the user to run as, and builds the
// final spec. It only reads pr, so it may run while pr's record is
// written and its init spawned.
func (e *Engine) resolveImage(pr *prepared) (*imageResult, error) {
	images, err := e.Images()
	if err != nil {
		return nil, err
	}
	img, err := images.Get(pr.opts.Image)
	if err != nil {
		return nil, err
	}
	userSpec := img.Config.Config.User
	if pr.opts.User != "" {
		userSpec = pr.opts.User
	}
	user, err := e.lookupUser(userSpec, img)
	if err != nil {
		return nil, err
	}
	cc := pr.cc
	cc.StopSignal = img.Config.Config.StopSignal
	extra, _ := json.Marshal(cc)
	return &imageResult{img: img, spec: pr.buildSpec(img.Config.Config, user), extra: extra}, nil
}

// apply completes pr with its image.
func (pr *prepared) apply(ir *imageResult) {
	pr.img, pr.spec = ir.img, ir.spec
	pr.cc.StopSignal = ir.img.Config.Config.StopSignal
	pr.rec.ImageID = ir.img.ID.String()
	pr.rec.Command = processArgs(ir.img.Config.Config, pr.opts)
	pr.rec.Labels = ir.img.Config.Config.Labels
	pr.rec.Extra = ir.extra
}

func (pr *prepared) buildSpec(img ocispec.ImageConfig, user resolvedUser) *specs.Spec {
	return buildSpec(&specInput{
		ID: pr.id, Opts: pr.opts, Parsed: pr.parsed, Image: img, User: user, Rootfs: pr.rootfs,
		Hostname: pr.cc.Hostname, EtcFiles: pr.etc, Cgroup: pr.cc.Cgroup, Resources: pr.resources,
		Width: pr.width, Height: pr.height,
	})
}

// materialize creates the container on disk: its record (reserving the
// name), then its files (materializeFiles). On error the caller removes
// the container.
func (e *Engine) materialize(pr *prepared) error {
	if err := e.materializeRecord(pr); err != nil {
		return err
	}
	if err := e.materializeFiles(pr); err != nil {
		pr.durable()
		return err
	}
	return pr.durable()
}

// materializeRecord writes the container's record, which reserves its name
// and must exist before anything else of the container does (its cgroup
// above all: rm -f finds everything through the record).
// Its fsync runs beside what follows: callers call pr.durable before they
// report the container created.
func (e *Engine) materializeRecord(pr *prepared) error {
	synced, err := e.Containers.CreateUnsynced(pr.rec)
	if err != nil {
		return err
	}
	pr.recordSynced = make(chan error, 1)
	go func() { pr.recordSynced <- synced() }()
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

// rootfsMountPoint is where every container's root filesystem is mounted
// (spec root.path): in the container's own mount namespace only, so one
// directory serves them all, and a container start creates (and its
// removal deletes) one inode less on the state directory's file system.
func (e *Engine) rootfsMountPoint() string { return filepath.Join(e.Root, "rootfs") }

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
	return e.teardownCgroups(ctr, spec != nil && spec.Linux != nil && usesNetCgroup(spec.Linux.Resources))
}

// teardownCgroups is teardown for a container that netCgroup says uses
// cfs's own net_cls/net_prio mount or not.
func (e *Engine) teardownCgroups(ctr *runtime.Container, netCgroup bool) error {
	err := ctr.Destroy()
	if netCgroup {
		releaseNetCgroups(e.Tracer)
	}
	return err
}
