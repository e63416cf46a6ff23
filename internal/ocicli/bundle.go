package ocicli

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// loadBundle reads dir/config.json and checks what the runtime cannot
// check later: the spec version and the root filesystem.
func loadBundle(dir string) (spec *specs.Spec, raw []byte, rootfs string, err error) {
	raw, err = os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, nil, "", fmt.Errorf("reading bundle config: %w", err)
	}
	spec = new(specs.Spec)
	if err := json.Unmarshal(raw, spec); err != nil {
		return nil, nil, "", fmt.Errorf("parsing %s: %w", filepath.Join(dir, "config.json"), err)
	}
	if err := checkVersion(spec.Version); err != nil {
		return nil, nil, "", err
	}
	if spec.Root == nil || spec.Root.Path == "" {
		return nil, nil, "", fmt.Errorf("config.json: root.path is required")
	}
	if spec.Linux == nil {
		return nil, nil, "", fmt.Errorf("config.json: linux section is required on Linux")
	}
	// process is optional until start (config.md).
	if p := spec.Process; p != nil {
		if len(p.Args) == 0 {
			return nil, nil, "", fmt.Errorf("config.json: process.args must not be empty")
		}
		if p.Cwd == "" || !filepath.IsAbs(p.Cwd) {
			return nil, nil, "", fmt.Errorf("config.json: process.cwd %q must be an absolute path", p.Cwd)
		}
	}
	rootfs = spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(dir, rootfs)
	}
	if st, err := os.Stat(rootfs); err != nil {
		return nil, nil, "", fmt.Errorf("root filesystem: %w", err)
	} else if !st.IsDir() {
		return nil, nil, "", fmt.Errorf("root filesystem %s: not a directory", rootfs)
	}
	return spec, raw, rootfs, nil
}

// specVersion is compiled on first use, not in every cfs process.
var specVersion = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^1\.([0-9]+)\.([0-9]+)(-[0-9A-Za-z.+-]+)?$`)
})

// checkVersion accepts runtime-spec 1.0.0 through 1.3.x (and their
// pre-releases).
func checkVersion(v string) error {
	m := specVersion().FindStringSubmatch(v)
	if m == nil {
		return fmt.Errorf("config.json: ociVersion %q: not a runtime-spec 1.x version", v)
	}
	if len(m[1]) > 1 || m[1] > "3" {
		return fmt.Errorf("config.json: ociVersion %q: newer than the 1.3 this runtime implements", v)
	}
	return nil
}

// cgroupPath turns linux.cgroupsPath into a cgroupfs path:
//
//	""                      /cfs-runtime/<id>
//	"/a/b"                  /a/b (relative to every hierarchy's root)
//	"a/b"                   /cfs-runtime/a/b (our parent: the spec lets the
//	                        runtime choose where relative paths start)
//	"slice:prefix:name"     systemd's form (with --systemd-cgroup, or
//	                        whenever it has two colons): the path systemd
//	                        would use, /a.slice/a-b.slice/prefix-name.scope;
//	                        cfs writes cgroupfs itself and does not ask
//	                        systemd to create the unit.
func cgroupPath(p, id string, systemd bool) (string, error) {
	if p == "" {
		return "/cfs-runtime/" + id, nil
	}
	if parts := strings.Split(p, ":"); len(parts) == 3 {
		slice, prefix, name := parts[0], parts[1], parts[2]
		if slice == "" {
			slice = "system.slice"
		}
		dir, err := expandSlice(slice)
		if err != nil {
			return "", err
		}
		unit := name
		if !strings.HasSuffix(name, ".slice") {
			if prefix != "" {
				unit = prefix + "-" + name
			}
			unit += ".scope"
		}
		return path.Join(dir, unit), nil
	} else if systemd {
		return "", fmt.Errorf("linux.cgroupsPath %q: --systemd-cgroup needs the form \"slice:prefix:name\"", p)
	}
	if strings.HasPrefix(p, "/") {
		return path.Clean(p), nil
	}
	return path.Join("/cfs-runtime", p), nil
}

// expandSlice maps a systemd slice name to its path: "a-b-c.slice" lives
// at /a.slice/a-b.slice/a-b-c.slice.
func expandSlice(slice string) (string, error) {
	if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") {
		return "", fmt.Errorf("systemd slice %q: invalid", slice)
	}
	name := strings.TrimSuffix(slice, ".slice")
	if name == "-" || name == "" {
		return "/", nil
	}
	var b strings.Builder
	prefix := ""
	for _, comp := range strings.Split(name, "-") {
		if comp == "" {
			return "", fmt.Errorf("systemd slice %q: invalid", slice)
		}
		b.WriteString("/" + prefix + comp + ".slice")
		prefix += comp + "-"
	}
	return b.String(), nil
}
