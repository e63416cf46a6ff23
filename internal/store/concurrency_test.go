package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// The process tests re-run this test binary as a helper (the pattern of Go's
// syscall/exec_linux_test.go): goroutines share one process's file table,
// and only separate processes prove the flock and link(2) protocol.
const (
	helperEnv  = "CFS_STORE_TEST_HELPER" // "create" or "update"
	helperRoot = "CFS_STORE_TEST_ROOT"
	helperArg  = "CFS_STORE_TEST_ARG" // the name to create, or the ID to update
	helperN    = "CFS_STORE_TEST_N"   // operations per process
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode))
	}
	os.Exit(m.Run())
}

// runHelper prints one line per operation: "ok <id> <name>", "conflict" or
// "error <msg>".
func runHelper(mode string) int {
	s, err := Open(os.Getenv(helperRoot))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv(helperN))
	arg := os.Getenv(helperArg)
	// Start barrier: the parent writes one byte once every helper runs.
	if _, err := os.Stdin.Read(make([]byte, 1)); err != nil {
		fmt.Println("error", err)
		return 1
	}
	for i := 0; i < n; i++ {
		switch mode {
		case "create":
			r := &Record{Name: arg, Image: "busybox"}
			err = s.Create(r)
			switch {
			case err == nil:
				fmt.Println("ok", r.ID, r.Name)
			case errors.Is(err, errdefs.ErrConflict):
				fmt.Println("conflict")
			default:
				fmt.Println("error", err)
			}
		case "update":
			if err := s.Update(arg, increment); err != nil {
				fmt.Println("error", err)
			} else {
				fmt.Println("ok")
			}
		}
	}
	return 0
}

// increment is a read-modify-write that loses counts unless serialised.
func increment(r *Record) error {
	n, _ := strconv.Atoi(r.Labels["counter"])
	if r.Labels == nil {
		r.Labels = map[string]string{}
	}
	r.Labels["counter"] = strconv.Itoa(n + 1)
	return nil
}

// runHelpers starts procs helper processes, releases them together, and
// returns every line they printed.
func runHelpers(t *testing.T, procs int, mode, root, arg string, n int) []string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts separate processes: skipped in -short mode")
	}
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bytes.Buffer
	}
	var ps []proc
	for i := 0; i < procs; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperRoot+"="+root, helperArg+"="+arg, helperN+"="+strconv.Itoa(n))
		out := &bytes.Buffer{}
		cmd.Stdout, cmd.Stderr = out, out
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, proc{cmd, stdin, out})
	}
	for _, p := range ps {
		_, _ = p.stdin.Write([]byte{1})
		p.stdin.Close()
	}
	var lines []string
	for _, p := range ps {
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("helper: %v\n%s", err, p.out)
		}
		sc := bufio.NewScanner(p.out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

// checkCreates verifies outcomes of concurrent Creates: wantOK successes
// (or -1 for "all"), unique IDs and names, and a store that agrees.
func checkCreates(t *testing.T, s *Store, outcomes []string, wantOK int) {
	t.Helper()
	ids, names := map[string]bool{}, map[string]bool{}
	conflicts := 0
	for _, o := range outcomes {
		f := strings.Fields(o)
		switch {
		case len(f) == 3 && f[0] == "ok":
			if ids[f[1]] || names[f[2]] {
				t.Errorf("duplicate ID or name: %s", o)
			}
			ids[f[1]], names[f[2]] = true, true
		case o == "conflict":
			conflicts++
		default:
			t.Errorf("unexpected outcome %q", o)
		}
	}
	if wantOK < 0 {
		wantOK = len(outcomes)
	}
	if len(ids) != wantOK || len(ids)+conflicts != len(outcomes) {
		t.Fatalf("%d created, %d conflicts of %d; want %d created", len(ids), conflicts, len(outcomes), wantOK)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != wantOK {
		t.Fatalf("List has %d records, want %d", len(list), wantOK)
	}
	for _, r := range list {
		if r.State.Error != "" || !ids[r.ID] || !names[r.Name] {
			t.Errorf("record %s %q (error %q) is not one we created", r.ID, r.Name, r.State.Error)
		}
		if got, err := s.Get(r.Name); err != nil || got.ID != r.ID {
			t.Errorf("Get(%q) = %v, %v; want %s", r.Name, got, err, r.ID)
		}
	}
	ents, _ := os.ReadDir(s.namesDir())
	if len(ents) != wantOK {
		t.Errorf("names/ has %d entries (temp files left?), want %d", len(ents), wantOK)
	}
	if ents, _ := os.ReadDir(s.stagingDir()); len(ents) != 0 {
		t.Errorf("staging not empty: %d entries", len(ents))
	}
}

func createInGoroutines(s *Store, n int, name string) []string {
	out := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := &Record{Name: name}
			err := s.Create(r)
			switch {
			case err == nil:
				out[i] = "ok " + r.ID + " " + r.Name
			case errors.Is(err, errdefs.ErrConflict):
				out[i] = "conflict"
			default:
				out[i] = "error " + err.Error()
			}
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func TestConcurrentCreate(t *testing.T) {
	tests := []struct {
		name   string
		create func(t *testing.T, s *Store) []string
		wantOK int
	}{
		{"goroutines same name", func(t *testing.T, s *Store) []string { return createInGoroutines(s, 100, "web") }, 1},
		{"goroutines generated names", func(t *testing.T, s *Store) []string { return createInGoroutines(s, 100, "") }, -1},
		{"processes same name", func(t *testing.T, s *Store) []string { return runHelpers(t, 20, "create", s.root, "web", 1) }, 1},
		{"processes generated names", func(t *testing.T, s *Store) []string { return runHelpers(t, 20, "create", s.root, "", 5) }, -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openTest(t)
			checkCreates(t, s, tc.create(t, s), tc.wantOK)
		})
	}
}

func TestConcurrentUpdate(t *testing.T) {
	t.Run("goroutines", func(t *testing.T) {
		s := openTest(t)
		r := mustCreate(t, s, &Record{Name: "counter"})
		const n = 100
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Update(r.ID, increment)
			}()
		}
		// Readers racing with the writers must never see a torn record.
		for i := 0; i < 50; i++ {
			if got, err := s.Get(r.ID); err != nil || got.State.Error != "" {
				t.Fatalf("Get during updates: %+v, %v", got, err)
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		checkCounter(t, s, r.ID, n)
	})
	t.Run("processes", func(t *testing.T) {
		s := openTest(t)
		r := mustCreate(t, s, &Record{Name: "counter"})
		const procs, each = 20, 10
		for _, line := range runHelpers(t, procs, "update", s.root, r.ID, each) {
			if line != "ok" {
				t.Fatalf("helper: %s", line)
			}
		}
		checkCounter(t, s, r.ID, procs*each)
	})
}

func checkCounter(t *testing.T, s *Store, id string, want int) {
	t.Helper()
	got, err := s.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := strconv.Atoi(got.Labels["counter"]); n != want {
		t.Fatalf("counter = %d, want %d: updates were lost", n, want)
	}
}

// Deletes racing with Creates of the same name must never leave two owners
// or a name that points nowhere.
func TestConcurrentCreateDelete(t *testing.T) {
	s := openTest(t)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 10; j++ {
				r := &Record{Name: "flappy"}
				if err := s.Create(r); err == nil {
					if err := s.Delete(r.ID); err != nil {
						t.Errorf("Delete: %v", err)
					}
				} else if !errors.Is(err, errdefs.ErrConflict) {
					t.Errorf("Create: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if l, _ := s.List(); len(l) != 0 {
		t.Fatalf("List has %d records after all deletes", len(l))
	}
	mustCreate(t, s, &Record{Name: "flappy"})
}
