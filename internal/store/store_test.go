package store

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustCreate(t *testing.T, s *Store, r *Record) *Record {
	t.Helper()
	if err := s.Create(r); err != nil {
		t.Fatalf("Create(%q): %v", r.Name, err)
	}
	return r
}

// idWith returns a valid ID starting with prefix.
func idWith(prefix string) string { return prefix + NewID()[len(prefix):] }

func TestGet(t *testing.T) {
	s := openTest(t)
	web := mustCreate(t, s, &Record{ID: idWith("abc1"), Name: "web", Image: "nginx"})
	db := mustCreate(t, s, &Record{ID: idWith("abc2"), Name: "db"})
	// A name that is also a prefix of another container's ID: names win,
	// as in Docker.
	hexName := mustCreate(t, s, &Record{ID: idWith("def0"), Name: "abc2"})

	tests := []struct {
		name    string
		ref     string
		wantID  string
		wantErr error
		wantMsg string
	}{
		{name: "full ID", ref: web.ID, wantID: web.ID},
		{name: "name", ref: "web", wantID: web.ID},
		{name: "name with slash", ref: "/web", wantID: web.ID},
		{name: "unique prefix", ref: "abc1", wantID: web.ID},
		{name: "short prefix", ref: db.ID[:12], wantID: db.ID},
		{name: "name beats prefix", ref: "abc2", wantID: hexName.ID},
		{name: "ambiguous prefix", ref: "abc", wantErr: errdefs.ErrInvalid, wantMsg: `container ID prefix "abc" is ambiguous (2 matches)`},
		{name: "missing name", ref: "nope", wantErr: errdefs.ErrNotFound, wantMsg: "no such container: nope"},
		{name: "missing prefix", ref: "fff", wantErr: errdefs.ErrNotFound, wantMsg: "no such container: fff"},
		{name: "missing full ID", ref: idWith("0000"), wantErr: errdefs.ErrNotFound},
		{name: "uppercase is not a prefix", ref: "ABC1", wantErr: errdefs.ErrNotFound},
		{name: "empty", ref: "", wantErr: errdefs.ErrInvalid},
		{name: "invalid name", ref: "a b", wantErr: errdefs.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.Get(tc.ref)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Get(%q) error = %v, want %v", tc.ref, err, tc.wantErr)
				}
				if tc.wantMsg != "" && err.Error() != tc.wantMsg {
					t.Fatalf("Get(%q) error = %q, want %q", tc.ref, err, tc.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Get(%q): %v", tc.ref, err)
			}
			if r.ID != tc.wantID {
				t.Fatalf("Get(%q) = %s, want %s", tc.ref, r.ID, tc.wantID)
			}
		})
	}
}

func TestCreateRoundTrip(t *testing.T) {
	s := openTest(t)
	in := &Record{
		Name: "app", Image: "alpine:3", ImageID: "sha256:" + strings.Repeat("a", 64),
		Command: []string{"sh", "-c", "echo hi"},
		Labels:  map[string]string{"k": "v"},
		Extra:   json.RawMessage(`{"Spec":"/x/config.json"}`),
	}
	mustCreate(t, s, in)
	if !isID(in.ID) || in.Created.IsZero() || in.State.Status != StatusCreated {
		t.Fatalf("Create did not fill defaults: %+v", in)
	}
	got, err := s.Get("app")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(in)
	b, _ := json.Marshal(got)
	if string(a) != string(b) {
		t.Fatalf("round trip:\n got %s\nwant %s", b, a)
	}
	// Docker's JSON field names, which the API layer relies on.
	data, err := os.ReadFile(filepath.Join(s.Dir(in.ID), recordFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"Id"`, `"Config"`, `"Status"`, `"StartedAt"`} {
		if !strings.Contains(string(data), key) {
			t.Errorf("record.json lacks %s: %s", key, data)
		}
	}
	if info, err := os.Stat(filepath.Join(s.Dir(in.ID), recordFile)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("record.json mode = %v, %v; want 0600", info.Mode(), err)
	}
}

func TestCreateInvalid(t *testing.T) {
	s := openTest(t)
	taken := mustCreate(t, s, &Record{Name: "taken"})
	tests := []struct {
		name    string
		rec     *Record
		wantErr error
		wantMsg string
	}{
		{name: "nil", rec: nil, wantErr: errdefs.ErrInvalid},
		{name: "leading dash", rec: &Record{Name: "-x"}, wantErr: errdefs.ErrInvalid},
		{name: "leading underscore", rec: &Record{Name: "_x"}, wantErr: errdefs.ErrInvalid},
		{name: "leading dot", rec: &Record{Name: ".x"}, wantErr: errdefs.ErrInvalid},
		{name: "dotdot", rec: &Record{Name: ".."}, wantErr: errdefs.ErrInvalid},
		{name: "slash inside", rec: &Record{Name: "a/b"}, wantErr: errdefs.ErrInvalid},
		{name: "space", rec: &Record{Name: "a b"}, wantErr: errdefs.ErrInvalid},
		{name: "too long", rec: &Record{Name: strings.Repeat("a", 256)}, wantErr: errdefs.ErrInvalid},
		{name: "short ID", rec: &Record{ID: "abc"}, wantErr: errdefs.ErrInvalid},
		{name: "uppercase ID", rec: &Record{ID: strings.ToUpper(NewID())}, wantErr: errdefs.ErrInvalid},
		{name: "name taken", rec: &Record{Name: "taken"}, wantErr: errdefs.ErrConflict,
			wantMsg: `container name "taken" is already in use by container "` + taken.ID + `"`},
		{name: "ID taken", rec: &Record{ID: taken.ID, Name: "other"}, wantErr: errdefs.ErrConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Create(tc.rec)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Create error = %v, want %v", err, tc.wantErr)
			}
			if tc.wantMsg != "" && err.Error() != tc.wantMsg {
				t.Fatalf("Create error = %q, want %q", err, tc.wantMsg)
			}
		})
	}
	// Failed creates leave nothing: one container, one name.
	if l, _ := s.List(); len(l) != 1 {
		t.Errorf("List after failed creates has %d records, want 1", len(l))
	}
	if ents, _ := os.ReadDir(s.namesDir()); len(ents) != 1 {
		t.Errorf("names/ has %d entries, want 1", len(ents))
	}
}

func TestValidNames(t *testing.T) {
	s := openTest(t)
	for _, name := range []string{"a", "A0", "0", "my_app.v1-2", "/slashed", strings.Repeat("z", 255)} {
		t.Run(name[:min(len(name), 20)], func(t *testing.T) {
			r := mustCreate(t, s, &Record{Name: name})
			if r.Name != strings.TrimPrefix(name, "/") {
				t.Fatalf("Name = %q", r.Name)
			}
		})
	}
}

func TestGeneratedName(t *testing.T) {
	s := openTest(t)
	pattern := regexp.MustCompile(`^[a-z]+_[a-z]+[0-9]*$`)
	r := mustCreate(t, s, &Record{})
	if !pattern.MatchString(r.Name) {
		t.Fatalf("generated name %q does not look like adjective_surname", r.Name)
	}
	if got, err := s.Get(r.Name); err != nil || got.ID != r.ID {
		t.Fatalf("Get(%q) = %v, %v", r.Name, got, err)
	}
	for i := 0; i < 5; i++ {
		if n := generateName(3); !pattern.MatchString(n) || n == "boring_wozniak" {
			t.Fatalf("generateName(3) = %q", n)
		}
	}
}

func TestListOrderAndCorruptRecords(t *testing.T) {
	s := openTest(t)
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	old := mustCreate(t, s, &Record{Name: "old", Created: base})
	mid := mustCreate(t, s, &Record{Name: "mid", Created: base.Add(time.Hour)})
	bad := mustCreate(t, s, &Record{Name: "bad", Created: base.Add(30 * time.Minute)})
	newest := mustCreate(t, s, &Record{Name: "new", Created: base.Add(2 * time.Hour)})
	if err := os.WriteFile(filepath.Join(s.Dir(bad.ID), recordFile), []byte(`{"Id": "tor`), 0o600); err != nil {
		t.Fatal(err)
	}

	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	// The corrupt record's mtime is now, so it sorts first.
	var got []string
	for _, r := range list {
		got = append(got, r.ID)
	}
	want := []string{bad.ID, newest.ID, mid.ID, old.ID}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("List order = %v, want %v", got, want)
	}
	if st := list[0].State; st.Status != StatusDead || !strings.Contains(st.Error, "parsing record") {
		t.Fatalf("corrupt record state = %+v, want dead with a parse error", st)
	}

	// Get still finds it by name (through the index) so it can be removed.
	r, err := s.Get("bad")
	if err != nil || r.ID != bad.ID || r.State.Status != StatusDead {
		t.Fatalf("Get(bad) = %+v, %v", r, err)
	}
	if err := s.Update(bad.ID, func(*Record) error { return nil }); err == nil {
		t.Fatal("Update of a corrupt record succeeded, want an error")
	}
	// Delete cannot read the name from the record; it must still free it.
	if err := s.Delete(bad.ID); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, &Record{Name: "bad"})
}

func TestTornTempFilesIgnored(t *testing.T) {
	s := openTest(t)
	r := mustCreate(t, s, &Record{Name: "web", Image: "nginx"})
	// What crashes leave behind: a half-written temp record beside the
	// real one, a half-built staging dir, a temp name file.
	torn := []string{
		filepath.Join(s.Dir(r.ID), ".record.json-123.tmp"),
		filepath.Join(s.stagingDir(), NewID()+"-1", recordFile),
		filepath.Join(s.namesDir(), ".tmp-42"),
		filepath.Join(s.root, "not-a-container"),
	}
	for _, p := range torn {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(`{"Id":"`), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].ID != r.ID || list[0].State.Status != StatusCreated {
		t.Fatalf("List = %v, %v; want just the one good record", list, err)
	}
	if got, err := s.Get("web"); err != nil || got.Image != "nginx" {
		t.Fatalf("Get(web) = %+v, %v", got, err)
	}
	if err := s.Update(r.ID, func(r *Record) error { r.State.Status = StatusRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(r.ID); got.State.Status != StatusRunning {
		t.Fatalf("Status = %q after Update", got.State.Status)
	}
	// Reopening sweeps trash but keeps a staging dir that may be in use.
	if _, err := Open(s.root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(torn[1]); err != nil {
		t.Fatalf("fresh staging dir was swept: %v", err)
	}
}

func TestStaleNameReservationReclaimed(t *testing.T) {
	s := openTest(t)
	// A crash between reserving the name and creating the directory.
	if err := os.WriteFile(filepath.Join(s.namesDir(), "ghost"), []byte(NewID()), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("ghost"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get(ghost) error = %v, want not found", err)
	}
	mustCreate(t, s, &Record{Name: "ghost"})
	// A damaged reservation is a leftover too.
	if err := os.WriteFile(filepath.Join(s.namesDir(), "garbled"), []byte("xx"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, &Record{Name: "garbled"})
}

func TestUpdate(t *testing.T) {
	s := openTest(t)
	r := mustCreate(t, s, &Record{Name: "web"})
	sentinel := errors.New("engine says no")
	tests := []struct {
		name    string
		id      string
		fn      func(*Record) error
		wantErr error
	}{
		{name: "ok", id: r.ID, fn: func(r *Record) error { r.State.Pid = 42; return nil }},
		{name: "fn error returned as is", id: r.ID, fn: func(r *Record) error { r.State.Pid = 7; return sentinel }, wantErr: sentinel},
		{name: "name change refused", id: r.ID, fn: func(r *Record) error { r.Name = "x"; return nil }, wantErr: errdefs.ErrInvalid},
		{name: "ID change refused", id: r.ID, fn: func(r *Record) error { r.ID = NewID(); return nil }, wantErr: errdefs.ErrInvalid},
		{name: "missing", id: NewID(), fn: func(*Record) error { return nil }, wantErr: errdefs.ErrNotFound},
		{name: "prefix is not an ID", id: r.ID[:12], fn: func(*Record) error { return nil }, wantErr: errdefs.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.Update(tc.id, tc.fn)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update error = %v, want %v", err, tc.wantErr)
			}
		})
	}
	got, _ := s.Get(r.ID)
	if got.State.Pid != 42 || got.Name != "web" {
		t.Fatalf("after updates: Pid %d Name %q, want 42 web (failed updates must not write)", got.State.Pid, got.Name)
	}
}

func TestRename(t *testing.T) {
	s := openTest(t)
	// Names here are not hex, so a lookup cannot fall through to an ID prefix.
	a := mustCreate(t, s, &Record{Name: "old"})
	mustCreate(t, s, &Record{Name: "taken"})
	tests := []struct {
		name    string
		id      string
		newName string
		wantErr error
	}{
		{name: "to taken name", id: a.ID, newName: "taken", wantErr: errdefs.ErrConflict},
		{name: "to same name", id: a.ID, newName: "old", wantErr: errdefs.ErrInvalid},
		{name: "to invalid name", id: a.ID, newName: "-z", wantErr: errdefs.ErrInvalid},
		{name: "missing container", id: NewID(), newName: "other", wantErr: errdefs.ErrNotFound},
		{name: "ok", id: a.ID, newName: "renamed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Rename(tc.id, tc.newName); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Rename error = %v, want %v", err, tc.wantErr)
			}
		})
	}
	if r, err := s.Get("renamed"); err != nil || r.ID != a.ID || r.Name != "renamed" {
		t.Fatalf("Get(renamed) = %+v, %v", r, err)
	}
	if _, err := s.Get("old"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("old name still resolves: %v", err)
	}
	mustCreate(t, s, &Record{Name: "old"}) // the old name is free
}

func TestDeleteFreesName(t *testing.T) {
	s := openTest(t)
	r := mustCreate(t, s, &Record{Name: "web"})
	if err := os.MkdirAll(filepath.Join(s.Dir(r.ID), "upper", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s.Dir(r.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("container dir survives Delete: %v", err)
	}
	if ents, _ := os.ReadDir(s.trashDir()); len(ents) != 0 {
		t.Fatalf("trash not emptied: %v", ents)
	}
	for _, ref := range []string{r.ID, "web", r.ID[:12]} {
		if _, err := s.Get(ref); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("Get(%q) after Delete: %v, want not found", ref, err)
		}
	}
	if err := s.Delete(r.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second Delete: %v, want not found", err)
	}
	if err := s.Delete("web"); !errors.Is(err, errdefs.ErrInvalid) {
		t.Fatalf("Delete by name: %v, want invalid (Delete takes a full ID)", err)
	}
	mustCreate(t, s, &Record{Name: "web"})
}

func TestLock(t *testing.T) {
	s := openTest(t)
	r := mustCreate(t, s, &Record{Name: "web"})
	unlock, err := s.Lock(r.ID)
	if err != nil {
		t.Fatal(err)
	}

	// A second locker waits until the first unlocks.
	got := make(chan error, 1)
	go func() {
		u, err := s.Lock(r.ID)
		if err == nil {
			u()
		}
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("second Lock returned %v while the lock was held", err)
	case <-time.After(50 * time.Millisecond):
	}
	// Holding the lock must not block UpdateLocked or Delete.
	if err := s.UpdateLocked(r.ID, func(r *Record) error { r.State.Pid = 1; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(r.ID); err != nil {
		t.Fatal(err)
	}
	unlock()
	unlock() // harmless
	// The waiter got a lock on a deleted container: that is "not found".
	if err := <-got; !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Lock waiting across Delete: %v, want not found", err)
	}
	if _, err := s.Lock(r.ID); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Lock after Delete: %v, want not found", err)
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID()
		if !isID(id) || seen[id] || strings.Trim(id[:12], "0123456789") == "" {
			t.Fatalf("NewID() = %q: want unique 64 hex chars, short form not all digits", id)
		}
		seen[id] = true
	}
}

// TestCreateUnsynced: the record is complete and found as soon as
// CreateUnsynced returns; synced (the fsync) succeeds afterwards, also once
// the record was replaced, and reports a record that is gone.
func TestCreateUnsynced(t *testing.T) {
	s := openTest(t)
	r := &Record{Name: "fast", Image: "busybox"}
	synced, err := s.CreateUnsynced(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get("fast")
	if err != nil || got.ID != r.ID || got.Image != "busybox" {
		t.Fatalf("Get before the sync: %+v, %v", got, err)
	}
	if err := s.Update(r.ID, func(r *Record) error { r.State.Status = StatusRunning; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := synced(); err != nil {
		t.Fatalf("synced after an update: %v", err)
	}
	r2 := &Record{Name: "gone"}
	synced, err = s.CreateUnsynced(r2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(r2.ID); err != nil {
		t.Fatal(err)
	}
	if err := synced(); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("synced of a deleted record: %v, want ErrNotExist", err)
	}
	// A taken name is refused as by Create, with no sync to run.
	if synced, err := s.CreateUnsynced(&Record{Name: "fast"}); !errors.Is(err, errdefs.ErrConflict) || synced != nil {
		t.Fatalf("taken name: %v", err)
	}
}
