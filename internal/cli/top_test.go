package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// comm with spaces and parentheses; fields from proc(5).
	line := "4242 (my (odd) prog) S 4200 4242 4242 34817 4242 4194560 100 0 0 0 250 130 0 0 20 0 1 0 360000 1000 100 18446744073709551615"
	st, ok := parseProcStat(line)
	if !ok || st.comm != "my (odd) prog" || st.ppid != 4200 || st.ttyNr != 34817 || st.utime != 250 || st.stime != 130 || st.start != 360000 {
		t.Errorf("got %+v, %v", st, ok)
	}
	if _, ok := parseProcStat("garbage"); ok {
		t.Error("garbage parsed")
	}
}

func TestProcColumns(t *testing.T) {
	for nr, want := range map[int]string{0: "?", 34816: "pts/0", 34817: "pts/1", 1025: "tty1", 1088: "ttyS0", 1281: "console"} {
		if got := ttyName(nr); got != want {
			t.Errorf("ttyName(%d) = %q, want %q", nr, got, want)
		}
	}
	for secs, want := range map[uint64]string{0: "00:00:00", 3: "00:00:03", 3725: "01:02:05", 90061: "1-01:01:01"} {
		if got := cpuTime(secs); got != want {
			t.Errorf("cpuTime(%d) = %q, want %q", secs, got, want)
		}
	}
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{now.Add(-time.Hour), "11:00"},
		{now.Add(-48 * time.Hour), "Apr29"},
		{time.Date(2023, 12, 31, 0, 0, 0, 0, time.UTC), "2023"},
	} {
		if got := startTime(tc.t, now); got != tc.want {
			t.Errorf("startTime(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestReadProcsFixture(t *testing.T) {
	root := t.TempDir()
	write := func(p, s string) {
		os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
		os.WriteFile(filepath.Join(root, p), []byte(s), 0o644)
	}
	boot := time.Date(2024, 5, 1, 0, 0, 0, 0, time.Local)
	write("stat", "cpu  1 2 3\nbtime "+strconv.FormatInt(boot.Unix(), 10)+"\n")
	write("uptime", "43200.00 80000.00\n") // 12 h after boot
	// Started 2 h after boot, 3600 s of CPU since: 36/100 of 10 h alive -> C 10.
	write("7/stat", "7 (sleep) S 1 7 7 0 -1 0 0 0 0 0 300000 60000 0 0 20 0 1 0 720000 0 0")
	write("7/status", "Name:\tsleep\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n")
	write("7/cmdline", "sleep\x0030\x00")
	write("8/stat", "8 (defunct) Z 7 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 720100 0 0")
	write("8/status", "Uid:\t0\t0\t0\t0\n")
	write("8/cmdline", "")
	procs := readProcs(root, []int{7, 8, 9}, boot.Add(12*time.Hour))
	if len(procs) != 2 {
		t.Fatalf("got %+v", procs)
	}
	p := procs[0]
	if p.PID != "7" || p.PPID != "1" || p.CMD != "sleep 30" || p.Time != "01:00:00" || p.C != "10" || p.TTY != "?" || p.STime != "02:00" || p.UID != "root" {
		t.Errorf("got %+v", p)
	}
	if procs[1].CMD != "[defunct]" {
		t.Errorf("zombie: %+v", procs[1])
	}
	var b bytes.Buffer
	printProcs(&b, procs)
	if first := strings.Split(b.String(), "\n")[0]; !strings.HasPrefix(first, "UID ") || !strings.HasSuffix(first, "CMD") {
		t.Errorf("header %q", first)
	}
}

func TestFilterPsOutput(t *testing.T) {
	out := "USER PID %CPU COMMAND\nroot 1 0.0 /sbin/init\nroot 42 0.0 sleep 30\nroot 420 0.0 sh -c x\n"
	got, err := filterPsOutput([]byte(out), []int{42, 7})
	if err != nil || string(got) != "USER PID %CPU COMMAND\nroot 42 0.0 sleep 30\n" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, err := filterPsOutput([]byte("A B\n1 2\n"), []int{1}); err == nil {
		t.Error("no PID column: no error")
	}
}
