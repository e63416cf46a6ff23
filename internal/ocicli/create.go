package ocicli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/ns"
	"github.com/cfs-org/cfs/internal/runtime"
)

// createOpts are the flags of create (and run).
type createOpts struct {
	bundle        string
	consoleSocket string
	pidFile       string
	noPivot       bool
	noNewKeyring  bool
	preserveFDs   int
}

func (o *createOpts) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.bundle, "bundle", "b", "", "path to the bundle directory (default: the current directory)")
	f.StringVar(&o.consoleSocket, "console-socket", "", "unix socket that receives the pty master of a process.terminal container")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the container's pid to")
	f.BoolVar(&o.noPivot, "no-pivot", false, "root the container with MS_MOVE and chroot instead of pivot_root (rootfs on ramfs)")
	f.BoolVar(&o.noNewKeyring, "no-new-keyring", false, "accepted for compatibility: cfs does not create session keyrings")
	f.IntVar(&o.preserveFDs, "preserve-fds", 0, "pass this many descriptors after stdio (3, 4, ...) to the container")
}

func newCreateCmd(g *globals) *cobra.Command {
	var o createOpts
	cmd := &cobra.Command{
		Use:   "create [flags] CONTAINER_ID",
		Short: "create a container from a bundle; its process waits for start",
		Args:  exactID,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := createContainer(g, args[0], &o, false)
			if err != nil {
				return err
			}
			c.release()
			return nil
		},
	}
	o.flags(cmd)
	return cmd
}

// created is a container that create made, with what run needs next.
type created struct {
	ctr   *runtime.Container
	st    *runtime.ContainerState
	spec  *specs.Spec
	lock  *runtime.StateLock
	pty   *os.File
	ctlFD *os.File
}

// release lets the container live on without us (create's end).
func (c *created) release() {
	if c.ctlFD != nil {
		c.ctlFD.Close()
	}
	if c.pty != nil {
		c.pty.Close()
	}
	c.lock.Unlock()
}

// createContainer does create: it starts init with the bundle's spec, waits
// until the root filesystem is ready, and records the state. keepPty: the
// caller (run in the foreground) uses the pty master itself when there is
// no console socket.
func createContainer(g *globals, id string, o *createOpts, keepPty bool) (_ *created, err error) {
	bundle := o.bundle
	if bundle == "" {
		bundle = "."
	}
	bundle, err = filepath.Abs(bundle)
	if err != nil {
		return nil, err
	}
	spec, raw, rootfs, err := loadBundle(bundle)
	if err != nil {
		return nil, err
	}
	terminal := spec.Process != nil && spec.Process.Terminal
	if terminal && o.consoleSocket == "" && !keepPty {
		return nil, fmt.Errorf("process.terminal is set: --console-socket is required to receive the pty master")
	}
	if !terminal && o.consoleSocket != "" {
		return nil, fmt.Errorf("--console-socket given but process.terminal is false")
	}
	cgPath, err := cgroupPath(spec.Linux.CgroupsPath, id, g.systemdCgroup)
	if err != nil {
		return nil, err
	}
	spec.Linux.CgroupsPath = cgPath
	if err := runtime.CheckSpec(spec); err != nil {
		return nil, err
	}
	root := g.state()
	lock, err := root.Create(id)
	if err != nil {
		return nil, err
	}
	c := &created{lock: lock, spec: spec}
	var ctr *runtime.Container
	defer func() {
		if err != nil {
			if ctr != nil {
				ctr.Destroy()
			}
			if c.ctlFD != nil {
				c.ctlFD.Close()
			}
			root.Remove(id)
			lock.Unlock()
		}
	}()
	if err := root.SaveSpec(id, raw); err != nil {
		return nil, err
	}
	c.ctlFD, err = runtime.ListenControl(root.ControlPath(id))
	if err != nil {
		return nil, err
	}
	cfg := &runtime.Config{
		ID: id, Spec: spec, SpecJSON: raw, Rootfs: rootfs, Bundle: bundle,
		Control: c.ctlFD, NoPivot: o.noPivot, Tracer: g.tracer, EarlyCgroup: true,
		FastStart: keepPty, // run in the foreground
	}
	// The program inherits our stdio, unless it has a terminal: then init
	// gets /dev/null, since a caller that reads our output through a pipe
	// (containerd's go-runc does) waits for its end, which init would
	// otherwise hold open for the container's life.
	if !terminal {
		cfg.Stdin, cfg.Stdout, cfg.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	for i := 0; i < o.preserveFDs; i++ {
		cfg.ExtraFiles = append(cfg.ExtraFiles, os.NewFile(uintptr(3+i), "preserved-fd-"+strconv.Itoa(3+i)))
	}
	plan, _ := ns.PlanFor(spec.Linux.Namespaces)
	ctr, err = runtime.Spawn(cfg)
	if err != nil {
		return nil, err
	}
	start, _, err := runtime.ProcStat(ctr.Pid)
	if err != nil {
		return nil, fmt.Errorf("reading init's start time: %w", err)
	}
	st := &runtime.ContainerState{
		ID: id, Pid: ctr.Pid, PidStart: start, Bundle: bundle, Rootfs: rootfs, CgroupPath: cgPath,
		Created: time.Now().UTC(), Annotations: spec.Annotations, Creating: true,
		OwnPidNS: plan.Clone&ns.NEWPID != 0, SharedMountNS: !plan.Has(specs.MountNamespace), Owner: "root",
		Poststart: len(runtime.HooksOf(spec, runtime.HookPoststart)) > 0,
		Poststop:  len(runtime.HooksOf(spec, runtime.HookPoststop)) > 0,
	}
	if err := ctr.Setup(cfg); err != nil {
		ctr = nil // Setup destroyed it
		return nil, err
	}
	c.ctr, c.st = ctr, st
	if terminal {
		c.pty = ctr.Pty()
		if o.consoleSocket != "" {
			if err := runtime.SendConsole(o.consoleSocket, c.pty); err != nil {
				return nil, err
			}
			c.pty.Close()
			c.pty = nil
		}
	}
	if o.pidFile != "" {
		if err := writePidFile(o.pidFile, ctr.Pid); err != nil {
			return nil, err
		}
	}
	st.Creating = false
	if err := root.Save(st); err != nil {
		return nil, err
	}
	return c, nil
}

// writePidFile writes pid atomically (containerd reads it as soon as it
// exists).
func writePidFile(path string, pid int) error {
	path, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}
