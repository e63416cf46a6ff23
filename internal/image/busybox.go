package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/cfs-org/cfs/internal/errdefs"
	"github.com/cfs-org/cfs/internal/trace"
)

const busyboxPasswd = `root:x:0:0:root:/root:/bin/sh
user:x:1000:1000::/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
`

const busyboxGroup = `root:x:0:
user:x:1000:
nogroup:x:65534:
`

// builtinBusybox makes the built-in busybox image from the host binary.
// Every entry carries the binary's mtime, so the image (and its ID) is the
// same for every process that makes it: two processes racing on first use
// publish identical content, and the second keeps the first's name entry.
func (s *Store) builtinBusybox(t *trace.Tracer) (*Image, error) {
	bin := s.BusyboxPath
	if bin == "" {
		bin = DefaultBusyboxPath
	}
	st, err := os.Stat(bin)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errdefs.NotFoundf("image %q is built from the host's %s, which is missing: install busybox-static (apt-get install busybox-static)", "busybox", bin)
		}
		return nil, fmt.Errorf("built-in busybox image: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, errdefs.Invalidf("built-in busybox image: %s is not a regular file", bin)
	}
	applets, err := busyboxApplets(bin)
	if err != nil {
		return nil, err
	}
	t.Step("image", "building the busybox image from %s (%d applets)", bin, len(applets))
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(writeBusyboxTar(pw, bin, st, applets))
	}()
	defer pr.Close()
	img, err := s.importLayer(pr, BusyboxName, ImportOptions{
		Tracer:       t,
		Config:       &ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{DefaultPath}},
		Created:      st.ModTime().UTC().Truncate(time.Second),
		createdBy:    "cfs built-in busybox image from " + bin,
		keepExisting: true,
	})
	if err != nil {
		return nil, fmt.Errorf("building the busybox image from %s: %w", bin, err)
	}
	return img, nil
}

// busyboxApplets lists the applet paths ("bin/ls", "usr/bin/env") the
// binary was built with.
func busyboxApplets(bin string) ([]string, error) {
	out, err := exec.Command(bin, "--list-full").Output()
	full := err == nil
	if !full {
		// Builds without --list-full: every applet goes to bin/.
		if out, err = exec.Command(bin, "--list").Output(); err != nil {
			return nil, fmt.Errorf("listing busybox applets of %s: %w", bin, err)
		}
	}
	seen := map[string]bool{}
	var applets []string
	for _, line := range strings.Split(string(out), "\n") {
		p := strings.Trim(strings.TrimSpace(line), "/")
		if p == "" {
			continue
		}
		if !full {
			p = "bin/" + p
		}
		// Applet names come from the host binary, but keep them tidy anyway.
		if c, err := cleanEntryName(p); err != nil || c != p || p == "bin/busybox" || seen[p] {
			continue
		}
		seen[p] = true
		applets = append(applets, p)
	}
	if len(applets) == 0 {
		return nil, fmt.Errorf("busybox at %s lists no applets", bin)
	}
	sort.Strings(applets)
	return applets, nil
}

// writeBusyboxTar writes the busybox layer: a minimal FHS tree, the
// binary, one absolute symlink per applet, passwd and group.
func writeBusyboxTar(w io.Writer, bin string, st fs.FileInfo, applets []string) error {
	mtime := st.ModTime().UTC().Truncate(time.Second)
	tw := tar.NewWriter(w)
	dirs := map[string]int64{
		"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "home/user": 0o755,
		"proc": 0o555, "root": 0o700, "sbin": 0o755, "sys": 0o555, "tmp": 0o1777,
		"usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "var": 0o755,
	}
	for _, a := range applets {
		for d := path.Dir(a); d != "."; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d)
	}
	sort.Strings(names) // parents first
	for _, d := range names {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: dirs[d], ModTime: mtime}
		if d == "home/user" {
			hdr.Uid, hdr.Gid = 1000, 1000
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
	}
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: st.Size(), ModTime: mtime}); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil {
		return err
	} else if n != st.Size() {
		return fmt.Errorf("%s changed size while being read", bin)
	}
	for _, a := range applets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: a, Linkname: "/bin/busybox", ModTime: mtime}); err != nil {
			return err
		}
	}
	for _, file := range []struct {
		name, data string
	}{{"etc/passwd", busyboxPasswd}, {"etc/group", busyboxGroup},
		// Empty mount points for the files every container gets bound
		// over them: no container then creates them (and copies /etc up)
		// in its writable layer.
		{"etc/hostname", ""}, {"etc/hosts", ""}, {"etc/resolv.conf", ""}} {
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: file.name, Mode: 0o644, Size: int64(len(file.data)), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, bytes.NewReader([]byte(file.data))); err != nil {
			return err
		}
	}
	return tw.Close()
}
