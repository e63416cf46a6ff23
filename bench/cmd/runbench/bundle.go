package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// bundleMain makes an OCI bundle equivalent to cfs's built-in busybox image:
// the host's static busybox and a symlink per applet (as "busybox
// --list-full" places them), and the config.json of "runc spec" adjusted to
// what "cfs run --rm --network none busybox true" asks of its runtime.
func bundleMain(args []string) error {
	fs := flag.NewFlagSet("bundle", flag.ExitOnError)
	busybox := fs.String("busybox", "/bin/busybox", "static busybox to copy into the rootfs")
	cgroup := fs.String("cgroup", "", "linux.cgroupsPath of the container (required)")
	argv := fs.String("args", "true", "process.args, separated by spaces")
	rootPath := fs.String("root", "", "root.path (default: the bundle's rootfs, made here); given, no rootfs is made")
	fs.Parse(args)
	if fs.NArg() != 1 || *cgroup == "" {
		return fmt.Errorf("bundle: want -cgroup PATH and one bundle directory")
	}
	dir := fs.Arg(0)
	if *rootPath == "" {
		if err := makeRootfs(*busybox, filepath.Join(dir, "rootfs")); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return writeConfig(dir, *cgroup, strings.Fields(*argv), *rootPath)
}

// makeRootfs fills rootfs with busybox and its applet links.
func makeRootfs(busybox, rootfs string) error {
	for _, d := range []string{"bin", "dev", "etc", "proc", "root", "sys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	if err := copyFile(busybox, filepath.Join(rootfs, "bin/busybox"), 0o755); err != nil {
		return err
	}
	out, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("listing applets of %s: %w", busybox, err)
	}
	for _, a := range strings.Fields(string(out)) {
		if a == "bin/busybox" || strings.Contains(a, "..") {
			continue
		}
		p := filepath.Join(rootfs, a)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", p); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

// writeConfig writes dir/config.json: "runc spec" adjusted to what cfs
// asks of its runtime, with args, cgroupsPath cgroup and, when rootPath is
// set, that root.path.
func writeConfig(dir, cgroup string, args []string, rootPath string) error {
	if out, err := exec.Command("runc", "spec", "--bundle", dir).CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %v: %s", err, out)
	}
	cfgPath := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	// A generic map keeps every default of "runc spec" we do not touch.
	var cfg map[string]any
	if err := json.Unmarshal(b, &cfg); err != nil {
		return fmt.Errorf("parsing %s: %w", cfgPath, err)
	}
	proc, _ := cfg["process"].(map[string]any)
	root, _ := cfg["root"].(map[string]any)
	linux, _ := cfg["linux"].(map[string]any)
	if proc == nil || root == nil || linux == nil {
		return fmt.Errorf("%s: no process, root or linux section", cfgPath)
	}
	proc["args"] = args
	proc["terminal"] = false
	root["readonly"] = false
	if rootPath != "" {
		root["path"] = rootPath
	}
	linux["cgroupsPath"] = cgroup
	nss, _ := linux["namespaces"].([]any)
	have := map[string]bool{}
	for _, n := range nss {
		if m, ok := n.(map[string]any); ok {
			have[fmt.Sprint(m["type"])] = true
		}
	}
	for _, t := range []string{"pid", "ipc", "uts", "mount", "network", "cgroup"} {
		if !have[t] {
			nss = append(nss, map[string]any{"type": t})
		}
	}
	linux["namespaces"] = nss
	b, err = json.MarshalIndent(cfg, "", "\t")
	if err != nil {
		return err
	}
	return os.WriteFile(cfgPath, b, 0o644)
}

func copyFile(src, dst string, mode os.FileMode) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, mode)
}
