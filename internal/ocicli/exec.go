package ocicli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/cfs-org/cfs/internal/runtime"
)

// execOpts are exec's flags.
type execOpts struct {
	process       string
	tty           bool
	consoleSocket string
	pidFile       string
	detach        bool
	cwd           string
	env           []string
	user          string
	groups        []string
	caps          []string
	noNewPrivs    bool
	preserveFDs   int
}

func newExecCmd(g *globals) *cobra.Command {
	var o execOpts
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER_ID [COMMAND [ARG...]]",
		Short: "run a process in a running container (-p process.json, or the command given)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExec(g, cmd, &o, args[0], args[1:])
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&o.process, "process", "p", "", "process.json: the process to run (runtime-spec process)")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pty")
	f.StringVar(&o.consoleSocket, "console-socket", "", "unix socket that receives the pty master")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the process's pid to")
	f.BoolVarP(&o.detach, "detach", "d", false, "do not wait for the process")
	f.StringVar(&o.cwd, "cwd", "", "working directory in the container")
	f.StringArrayVarP(&o.env, "env", "e", nil, "environment variable KEY=VALUE (repeatable)")
	f.StringVarP(&o.user, "user", "u", "", "UID[:GID] to run as")
	f.StringArrayVarP(&o.groups, "additional-gids", "g", nil, "additional group ID (repeatable)")
	f.StringArrayVarP(&o.caps, "cap", "c", nil, "add a capability (repeatable; never beyond the container's bounding set)")
	f.BoolVar(&o.noNewPrivs, "no-new-privs", false, "set no_new_privs for the process")
	f.IntVar(&o.preserveFDs, "preserve-fds", 0, "pass this many descriptors after stdio to the process")
	f.String("process-label", "", "SELinux label (not supported)")
	f.String("apparmor", "", "AppArmor profile (not supported)")
	f.Bool("ignore-paused", false, "accepted for compatibility")
	return cmd
}

func runExec(g *globals, cmd *cobra.Command, o *execOpts, id string, args []string) error {
	root := g.state()
	st, err := root.Load(id)
	if err != nil {
		return err
	}
	if s := st.Status(); s != specs.StateRunning {
		return fmt.Errorf("cannot exec in container %s: it is %s, not running", id, s)
	}
	if v, _ := cmd.Flags().GetString("process-label"); v != "" {
		return errors.New("--process-label: SELinux is not supported")
	}
	if v, _ := cmd.Flags().GetString("apparmor"); v != "" {
		return errors.New("--apparmor: AppArmor is not supported")
	}
	proc, err := execProcess(root, id, o, args)
	if err != nil {
		return err
	}
	if proc.Terminal && o.consoleSocket == "" && o.detach {
		return errors.New("a detached exec with a terminal needs --console-socket")
	}
	// Subscribe before the process exists, so no signal is lost.
	sigs := make(chan os.Signal, 64)
	if !o.detach {
		signal.Notify(sigs)
	}
	eo := runtime.ExecOptions{Control: root.ControlPath(id), Tty: proc.Terminal}
	if !proc.Terminal {
		eo.Stdin, eo.Stdout, eo.Stderr = os.Stdin, os.Stdout, os.Stderr
	}
	for i := 0; i < o.preserveFDs; i++ {
		eo.ExtraFiles = append(eo.ExtraFiles, os.NewFile(uintptr(3+i), "preserved"))
	}
	p, err := runtime.Exec(proc, eo)
	if err != nil {
		if errors.Is(err, runtime.ErrNotRunning) {
			return fmt.Errorf("cannot exec in container %s: %w", id, err)
		}
		var ie *runtime.InitError
		if errors.As(err, &ie) && !o.detach {
			g.log.errorf("%v", err)
			return &exitError{code: ie.Code}
		}
		return err
	}
	defer p.Close()
	restore := func() {}
	if proc.Terminal {
		if o.consoleSocket != "" {
			if err := runtime.SendConsole(o.consoleSocket, p.Pty()); err != nil {
				return err
			}
		} else {
			restore = attachTerminal(p.Pty())
		}
	}
	defer restore()
	if o.detach {
		pid, err := startWaiter(p)
		if err != nil {
			return err
		}
		if o.pidFile != "" {
			return writePidFile(o.pidFile, pid)
		}
		return nil
	}
	if o.pidFile != "" {
		// runc writes the process's pid. Ours is unknown when the process
		// was over and reaped before init's answer was read (see
		// startWaiter): this process then stands for it, as the waiter
		// does for a detached exec (it exits with its status and forwards
		// signals to it).
		pid := p.Pid
		if pid <= 0 {
			pid = os.Getpid()
		}
		if err := writePidFile(o.pidFile, pid); err != nil {
			return err
		}
	}
	go forwardSignals(sigs, p)
	code, err := p.Wait()
	signal.Stop(sigs)
	restore()
	if err != nil && !errors.Is(err, runtime.ErrNotRunning) {
		return err
	}
	if code != 0 {
		return &exitError{code: code}
	}
	return nil
}

func forwardSignals(sigs chan os.Signal, p *runtime.ExecProcess) {
	for s := range sigs {
		switch s {
		case syscall.SIGCHLD, syscall.SIGURG, syscall.SIGPIPE:
			continue
		case syscall.SIGWINCH:
			if p.Pty() != nil {
				resizeFrom(p.Pty(), os.Stdin)
			}
			continue
		}
		p.Signal(s.(syscall.Signal))
	}
}

// startWaiter hands the exec'd process to a small detached process (this
// binary again) that waits for it, forwards signals to it and exits with
// its status: for a detached exec, the --pid-file names the waiter, which
// containerd's shim and conmon (subreapers) wait for, as with runsc. If
// the waiter is killed, init kills the process.
//
// The waiter learns the status from init over the connection, never from
// the pid: a process that exits at once (sh -c 'exit 6') is often reaped
// by init before its pid was read from the pidfd, and p.Pid is then -1
// (fdinfo's "Pid: -1"). The status is waiting in the connection all the
// same. (The pid was once the waiter's argument as is, and cobra took
// "-1" for an unknown flag: the waiter exited 1 instead of the status,
// which conmon and the shim reported for the exec.)
func startWaiter(p *runtime.ExecProcess) (int, error) {
	conn, err := p.Conn()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	arg := p.Pid
	if arg < 0 {
		arg = 0 // unknown: over already
	}
	c := exec.Command("/proc/self/exe", execWaitArg, strconv.Itoa(arg))
	c.Args[0] = "cfs-runtime"
	c.Stdin, c.Stdout, c.Stderr = null, null, null
	c.ExtraFiles = []*os.File{conn}
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	c.Env = []string{"GOMAXPROCS=1"}
	if err := c.Start(); err != nil {
		return 0, fmt.Errorf("start exec waiter: %w", err)
	}
	pid := c.Process.Pid
	c.Process.Release()
	return pid, nil
}

const execWaitArg = "__exec-wait"

// newExecWaitCmd is the waiter's entry (hidden). Its one argument is the
// process's pid, 0 when unknown (informational only). It takes no flags:
// nothing in its argument may be parsed as one.
func newExecWaitCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:                execWaitArg + " PID",
		Hidden:             true,
		DisableFlagParsing: true,
		Args:               cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pid, _ := strconv.Atoi(args[0])
			sigs := make(chan os.Signal, 64)
			signal.Notify(sigs)
			conn := os.NewFile(3, "exec-conn")
			p := runtime.ResumeExec(conn, pid)
			conn.Close()
			go forwardSignals(sigs, p)
			code, _ := p.Wait()
			return &exitError{code: code}
		},
	}
}

// execProcess builds the process to run: process.json as given, or the
// container's own process with the command line's changes.
func execProcess(root runtime.StateRoot, id string, o *execOpts, args []string) (*specs.Process, error) {
	if o.process != "" {
		b, err := os.ReadFile(o.process)
		if err != nil {
			return nil, fmt.Errorf("reading process.json: %w", err)
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", o.process, err)
		}
		if len(p.Args) == 0 {
			return nil, fmt.Errorf("%s: args must not be empty", o.process)
		}
		if o.tty {
			p.Terminal = true
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec needs a command or --process")
	}
	spec, err := root.LoadSpec(id)
	if err != nil {
		return nil, err
	}
	p := *spec.Process
	p.Args = args
	p.Terminal = o.tty
	p.ConsoleSize = nil
	p.Env = append(append([]string{}, p.Env...), o.env...)
	if o.cwd != "" {
		p.Cwd = o.cwd
	}
	if o.user != "" {
		u, gid, hasGID := strings.Cut(o.user, ":")
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: UID[:GID] must be numeric", o.user)
		}
		p.User.UID = uint32(uid)
		if hasGID {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: UID[:GID] must be numeric", o.user)
			}
			p.User.GID = uint32(g)
		}
	}
	for _, s := range o.groups {
		g, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--additional-gids %q: must be numeric", s)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	if len(o.caps) > 0 {
		c := specs.LinuxCapabilities{}
		if p.Capabilities != nil {
			c = *p.Capabilities
		}
		for _, name := range o.caps {
			n := strings.ToUpper(name)
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if _, ok := runtime.CapNumber(n); !ok {
				return nil, fmt.Errorf("--cap %q: unknown capability", name)
			}
			c.Bounding = append(c.Bounding, n)
			c.Effective = append(c.Effective, n)
			c.Permitted = append(c.Permitted, n)
			c.Inheritable = append(c.Inheritable, n)
			c.Ambient = append(c.Ambient, n)
		}
		p.Capabilities = &c
	}
	if o.noNewPrivs {
		p.NoNewPrivileges = true
	}
	return &p, nil
}
