package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestCpioReader(t *testing.T) {
	data := buildCpio([]cpioEntry{
		{name: ".", mode: sIFDIR | 0o755},
		{name: "bin", mode: sIFDIR | 0o755, mtime: 1234},
		{name: "bin/sh", mode: sIFREG | 0o4755, uid: 1, gid: 2, data: "#!shell"},
		{name: "bin/ash", mode: sIFLNK | 0o777, data: "sh"},
		{name: "empty", mode: sIFREG | 0o600},
	}, true)
	cr := newCpioReader(bytes.NewReader(data))
	var got []string
	for {
		h, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(cr)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		got = append(got, h.Name+"|"+string(body))
		if h.Name == "bin/sh" && (h.Mode != sIFREG|0o4755 || h.UID != 1 || h.GID != 2) {
			t.Errorf("bin/sh header %+v", h)
		}
		if h.Name == "bin" && h.Mtime != 1234 {
			t.Errorf("bin mtime %d", h.Mtime)
		}
	}
	want := ".|,bin|,bin/sh|#!shell,bin/ash|sh,empty|"
	if s := strings.Join(got, ","); s != want {
		t.Fatalf("entries %s, want %s", s, want)
	}
}

func TestCpioReaderSkipsUnreadDataAndConcatenation(t *testing.T) {
	a := buildCpio([]cpioEntry{{name: "one", mode: sIFREG | 0o644, data: "12345"}}, false)
	b := buildCpio([]cpioEntry{{name: "two", mode: sIFREG | 0o644, data: "abc"}}, false)
	// Initramfs images concatenate archives with zero padding between.
	data := append(append(append([]byte{}, a...), make([]byte, 512)...), b...)
	cr := newCpioReader(bytes.NewReader(data))
	var names []string
	for {
		h, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "one,two" {
		t.Fatalf("names %v", names)
	}
}

func TestCpioReaderErrors(t *testing.T) {
	good := buildCpio([]cpioEntry{{name: "file", mode: sIFREG | 0o644, data: strings.Repeat("x", 100)}}, true)
	badSum := bytes.Replace(append([]byte{}, good...), []byte("xxxx"), []byte("xxxy"), 1)
	badHex := append([]byte{}, good...)
	copy(badHex[6:14], "zzzzzzzz")
	noNul := append([]byte{}, good...)
	noNul[cpioHeaderLen+4] = 'X' // the NUL after "file"
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty archive"},
		{"truncated data", good[:cpioHeaderLen+8+50], "truncated"},
		{"truncated header", good[:50], "truncated"},
		{"no trailer", good[:cpioHeaderLen+8+100], "truncated"},
		{"bad magic", append([]byte("070707"), good[6:]...), "bad magic"},
		{"bad hex", badHex, "bad hex"},
		{"checksum", badSum, "checksum"},
		{"name without NUL", noNul, "NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := cpioToTar(bytes.NewReader(tc.data), io.Discard, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("cpioToTar: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

type tarSummary struct {
	typ        byte
	link, data string
	mode       int64
	uid        int
}

func readTarSummary(t *testing.T, data []byte) ([]string, map[string]tarSummary) {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var order []string
	m := map[string]tarSummary{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		order = append(order, h.Name)
		m[h.Name] = tarSummary{typ: h.Typeflag, link: h.Linkname, data: string(body), mode: h.Mode, uid: h.Uid}
	}
	return order, m
}

func TestCpioToTar(t *testing.T) {
	data := buildCpio([]cpioEntry{
		{name: ".", mode: sIFDIR | 0o755},
		{name: "./etc", mode: sIFDIR | 0o755},
		{name: "/etc/passwd", mode: sIFREG | 0o644, data: "root:x:0:0"},
		{name: "bin/sh", mode: sIFLNK | 0o777, data: "busybox"},
		{name: "dev/console", mode: sIFCHR | 0o600, rmaj: 5, rmin: 1},
		{name: "run/fifo", mode: sIFIFO | 0o644, uid: 7},
		{name: "run/sock", mode: sIFSOCK | 0o755},
		// GNU cpio: data with the last name of a link set.
		{name: "gnu/a", mode: sIFREG | 0o755, ino: 10, nlink: 3},
		{name: "gnu/b", mode: sIFREG | 0o755, ino: 10, nlink: 3},
		{name: "gnu/c", mode: sIFREG | 0o755, ino: 10, nlink: 3, data: "GNU"},
		// gen_init_cpio: data with the first name.
		{name: "kern/a", mode: sIFREG | 0o755, ino: 20, nlink: 2, data: "KERN"},
		{name: "kern/b", mode: sIFREG | 0o755, ino: 20, nlink: 2},
		// An empty hardlinked file: no name ever has data.
		{name: "empty/a", mode: sIFREG | 0o600, ino: 30, nlink: 2},
		{name: "empty/b", mode: sIFREG | 0o600, ino: 30, nlink: 2},
	}, false)
	var out bytes.Buffer
	if err := cpioToTar(bytes.NewReader(data), &out, nil); err != nil {
		t.Fatal(err)
	}
	order, m := readTarSummary(t, out.Bytes())
	want := map[string]tarSummary{
		"./":          {typ: tar.TypeDir, mode: 0o755},
		"etc/":        {typ: tar.TypeDir, mode: 0o755},
		"etc/passwd":  {typ: tar.TypeReg, data: "root:x:0:0", mode: 0o644},
		"bin/sh":      {typ: tar.TypeSymlink, link: "busybox", mode: 0o777},
		"dev/console": {typ: tar.TypeChar, mode: 0o600},
		"run/fifo":    {typ: tar.TypeFifo, mode: 0o644, uid: 7},
		"gnu/c":       {typ: tar.TypeReg, data: "GNU", mode: 0o755},
		"gnu/a":       {typ: tar.TypeLink, link: "gnu/c", mode: 0o755},
		"gnu/b":       {typ: tar.TypeLink, link: "gnu/c", mode: 0o755},
		"kern/a":      {typ: tar.TypeReg, data: "KERN", mode: 0o755},
		"kern/b":      {typ: tar.TypeLink, link: "kern/a", mode: 0o755},
		"empty/a":     {typ: tar.TypeReg, mode: 0o600},
		"empty/b":     {typ: tar.TypeLink, link: "empty/a", mode: 0o600},
	}
	if len(m) != len(want) {
		t.Errorf("got entries %v", order)
	}
	for name, w := range want {
		if g, ok := m[name]; !ok || g != w {
			t.Errorf("%s: got %+v (present %v), want %+v", name, g, ok, w)
		}
	}
	// A hardlink must follow its target.
	pos := map[string]int{}
	for i, n := range order {
		pos[n] = i
	}
	for name, s := range m {
		if s.typ == tar.TypeLink && pos[s.link] > pos[name] {
			t.Errorf("hardlink %s comes before its target %s", name, s.link)
		}
	}
	// Deterministic: the same input gives the same tar (and diff ID).
	var again bytes.Buffer
	if err := cpioToTar(bytes.NewReader(data), &again, nil); err != nil || !bytes.Equal(again.Bytes(), out.Bytes()) {
		t.Fatalf("second conversion differs (err %v)", err)
	}
}
