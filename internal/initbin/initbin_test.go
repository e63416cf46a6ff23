package initbin

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"
)

func payloadFS(content string) (fstest.MapFS, string) {
	s := sha256.Sum256([]byte(content))
	sum := hex.EncodeToString(s[:])
	return fstest.MapFS{
		binName: {Data: []byte(content), Mode: 0o755},
		sumName: {Data: []byte(sum + "\n")},
	}, sum
}

func TestInstallWritesOnceAndReplacesOtherVersions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	fsys, sum := payloadFS("#!/bin/sh\necho v1\n")
	p, err := Install(dir, sum, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "cfs-init-"+sum[:16]); p != want {
		t.Fatalf("path %q, want %q", p, want)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v, want 0755", fi.Mode())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o711 {
		t.Fatalf("dir mode %v, want 0711 (others exec the init under --userns remap)", di.Mode())
	}
	if b, _ := os.ReadFile(p); string(b) != "#!/bin/sh\necho v1\n" {
		t.Fatalf("content %q", b)
	}
	// Installed already: reused as it is (same inode).
	var before, after os.FileInfo = fi, nil
	if _, err := Install(dir, sum, fsys); err != nil {
		t.Fatal(err)
	}
	after, _ = os.Stat(p)
	if !os.SameFile(before, after) {
		t.Fatal("an installed init was written again")
	}
	// A damaged copy (wrong size) is replaced.
	if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(dir, sum, fsys); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "#!/bin/sh\necho v1\n" {
		t.Fatalf("damaged copy kept: %q", b)
	}
	// A removed copy (another version's cleanup, by hand) comes back.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(dir, sum, fsys); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "#!/bin/sh\necho v1\n" {
		t.Fatalf("removed copy not reinstalled: %q", b)
	}
	// A directory others cannot search (made by an older cfs) is fixed.
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := Install(dir, sum, fsys); err != nil {
		t.Fatal(err)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o711 {
		t.Fatalf("dir mode %v after install, want 0711", di.Mode())
	}
	// Another version is installed beside this recent one; no temporary
	// file stays.
	fsys2, sum2 := payloadFS("#!/bin/sh\necho v2\n")
	p2, err := Install(dir, sum2, fsys2)
	if err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("dir holds %v, want %s and %s", ents, p, p2)
	}
	// Once it is old, installing another version removes it.
	old := time.Now().Add(-staleAfter - time.Minute)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	fsys3, sum3 := payloadFS("#!/bin/sh\necho v3\n")
	p3, err := Install(dir, sum3, fsys3)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		names = append(names, filepath.Join(dir, e.Name()))
	}
	if len(names) != 2 || !slices.Contains(names, p2) || !slices.Contains(names, p3) {
		t.Fatalf("dir holds %v, want %s and %s (the stale %s removed)", names, p2, p3, p)
	}
}

func TestInstallRefusesAPayloadOfAnotherBuild(t *testing.T) {
	dir := t.TempDir()
	fsys, sum := payloadFS("init")
	other := sha256.Sum256([]byte("other"))
	for name, stamp := range map[string]string{
		"no stamp (plain go build)": "",
		"another build's stamp":     hex.EncodeToString(other[:]),
		"short stamp":               sum[:16],
	} {
		if p, err := Install(dir, stamp, fsys); !errors.Is(err, ErrNone) || p != "" {
			t.Errorf("%s: got %q, %v; want ErrNone", name, p, err)
		}
	}
	if p, err := Install(dir, sum, fstest.MapFS{"payload/README.md": {Data: []byte("x")}}); !errors.Is(err, ErrNone) || p != "" {
		t.Errorf("no payload: got %q, %v; want ErrNone", p, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("refused payloads left %v", ents)
	}
}

// TestInstallConcurrent: installers racing (the first containers after a
// boot) leave one complete copy and no temporary file.
func TestInstallConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	fsys, sum := payloadFS(strings.Repeat("init ", 100000))
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := Install(dir, sum, fsys); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("dir holds %v, want one init", ents)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, ents[0].Name())); string(b) != strings.Repeat("init ", 100000) {
		t.Fatalf("installed copy is incomplete (%d bytes)", len(b))
	}
}
