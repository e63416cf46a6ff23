package engine

import (
	"bufio"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// RunOptions are the user's choices for a new container, as the CLI and
// the HTTP API collect them (Docker's names).
type RunOptions struct {
	Image       string
	Cmd         []string
	Entrypoint  *string // nil: the image's; "": none
	Name        string
	Remove      bool
	Interactive bool
	TTY         bool
	Env         []string // KEY=VALUE or KEY (taken from the caller's environment)
	EnvFiles    []string
	Workdir     string
	User        string
	Hostname    string
	Volumes     []string // /host:/ctr[:ro|rw]
	Tmpfs       []string // /ctr[:options]
	ReadOnly    bool
	Network     string // "none" (default) or "host"
	Userns      string // "host" (default) or "remap"
	Detach      bool
	Restart     string   // no|on-failure[:N]|always|unless-stopped
	LogOpts     []string // --log-opt max-size=10m,max-file=3
	Resources   ResourceOptions
	// LookupEnv reads the caller's environment for bare -e KEY; nil means
	// os.LookupEnv.
	LookupEnv func(string) (string, bool) `json:"-"`
	// id, when set, is the container's ID (a spare's).
	id string
	// dir, when set, is the container's directory instead of the store's
	// (a ready spare's, renamed into the store when it is taken).
	dir string
}

// Volume is a parsed -v.
type Volume struct {
	Source, Target string
	ReadOnly       bool
}

// Tmpfs is a parsed --tmpfs.
type Tmpfs struct {
	Target  string
	Options []string
}

// Regexps compile on first use: every cfs process (and every container's
// init) would otherwise pay for them at start-up.
var hostnameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62}[a-zA-Z0-9])?)*$`)
})

// envNameRE is what the shell accepts; Docker accepts more but a name with
// '=' or NUL cannot work.
func validEnvName(k string) bool { return k != "" && !strings.ContainsAny(k, "=\x00") }

// parsed holds the validated forms of RunOptions.
type parsed struct {
	env     []string
	volumes []Volume
	tmpfs   []Tmpfs
}

// validate checks every option and resolves env files and bare env names.
// Errors name the flag (ErrInvalid).
func (o *RunOptions) validate() (*parsed, error) {
	p := &parsed{}
	if o.Image == "" {
		return nil, errdefs.Invalidf("no image given")
	}
	switch o.Network {
	case "", "none", "host":
	case "bridge":
		return nil, errdefs.Unsupportedf("--network bridge: not available yet (use none or host)")
	default:
		return nil, errdefs.Invalidf("--network %q: must be none or host", o.Network)
	}
	switch o.Userns {
	case "", "host", "remap":
	default:
		return nil, errdefs.Invalidf("--userns %q: must be host or remap", o.Userns)
	}
	if o.Hostname != "" && (len(o.Hostname) > 64 || !hostnameRE().MatchString(o.Hostname)) {
		return nil, errdefs.Invalidf("--hostname %q: not a valid host name (letters, digits, '-' and '.', at most 64)", o.Hostname)
	}
	if o.Workdir != "" && !path.IsAbs(o.Workdir) {
		return nil, errdefs.Invalidf("--workdir %q: must be an absolute path", o.Workdir)
	}
	lookup := o.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	for _, f := range o.EnvFiles {
		lines, err := readEnvFile(f)
		if err != nil {
			return nil, err
		}
		for _, l := range lines {
			e, ok, err := resolveEnv(l, lookup, "--env-file "+f)
			if err != nil {
				return nil, err
			}
			if ok {
				p.env = append(p.env, e)
			}
		}
	}
	for _, l := range o.Env {
		e, ok, err := resolveEnv(l, lookup, "--env")
		if err != nil {
			return nil, err
		}
		if ok {
			p.env = append(p.env, e)
		}
	}
	for _, v := range o.Volumes {
		vol, err := parseVolume(v)
		if err != nil {
			return nil, err
		}
		p.volumes = append(p.volumes, vol)
	}
	for _, t := range o.Tmpfs {
		tm, err := parseTmpfs(t)
		if err != nil {
			return nil, err
		}
		p.tmpfs = append(p.tmpfs, tm)
	}
	return p, nil
}

func resolveEnv(l string, lookup func(string) (string, bool), flag string) (string, bool, error) {
	k, _, hasValue := strings.Cut(l, "=")
	if !validEnvName(k) {
		return "", false, errdefs.Invalidf("%s %q: invalid variable name", flag, l)
	}
	if hasValue {
		return l, true, nil
	}
	if v, ok := lookup(k); ok {
		return k + "=" + v, true, nil
	}
	return "", false, nil // Docker drops a bare name that is not set
}

func readEnvFile(name string) ([]string, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, errdefs.Invalidf("--env-file %s: %v", name, err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		l := strings.TrimLeft(sc.Text(), " \t")
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.ContainsRune(l, 0) {
			return nil, errdefs.Invalidf("--env-file %s line %d: contains a NUL byte", name, n)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, errdefs.Invalidf("--env-file %s: %v", name, err)
	}
	return out, nil
}

func parseVolume(v string) (Volume, error) {
	parts := strings.Split(v, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return Volume{}, errdefs.Invalidf("--volume %q: want /host/path:/container/path[:ro|rw]", v)
	}
	vol := Volume{Source: parts[0], Target: parts[1]}
	if !path.IsAbs(vol.Source) {
		return Volume{}, errdefs.Invalidf("--volume %q: host path %q must be absolute (named volumes are not supported)", v, vol.Source)
	}
	if !path.IsAbs(vol.Target) || path.Clean(vol.Target) == "/" {
		return Volume{}, errdefs.Invalidf("--volume %q: container path %q must be absolute and not /", v, vol.Target)
	}
	if len(parts) == 3 {
		for _, o := range strings.Split(parts[2], ",") {
			switch o {
			case "ro":
				vol.ReadOnly = true
			case "rw":
				vol.ReadOnly = false
			case "z", "Z", "rprivate", "private", "rslave", "slave":
			default:
				return Volume{}, errdefs.Invalidf("--volume %q: unknown option %q (want ro or rw)", v, o)
			}
		}
	}
	vol.Target = path.Clean(vol.Target)
	return vol, nil
}

var tmpfsOptionRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^(ro|rw|nosuid|suid|nodev|dev|noexec|exec|size=[0-9]+[kmgKMG%]?|mode=[0-7]{3,4}|uid=[0-9]+|gid=[0-9]+|nr_inodes=[0-9]+[kmgKMG]?)$`)
})

func parseTmpfs(t string) (Tmpfs, error) {
	target, opts, _ := strings.Cut(t, ":")
	if !path.IsAbs(target) || path.Clean(target) == "/" {
		return Tmpfs{}, errdefs.Invalidf("--tmpfs %q: path must be absolute and not /", t)
	}
	tm := Tmpfs{Target: path.Clean(target), Options: []string{"nosuid", "nodev", "noexec"}}
	if opts != "" {
		for _, o := range strings.Split(opts, ",") {
			if !tmpfsOptionRE().MatchString(o) {
				return Tmpfs{}, errdefs.Invalidf("--tmpfs %q: unknown option %q", t, o)
			}
			tm.Options = append(tm.Options, o)
		}
	}
	return tm, nil
}

// String renders a volume back in -v form.
func (v Volume) String() string {
	s := v.Source + ":" + v.Target
	if v.ReadOnly {
		s += ":ro"
	}
	return s
}
