package engine

import (
	"bytes"
	"testing"
)

func TestParseDetachKeys(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		bad  bool
	}{
		{"", []byte{0x10, 0x11}, false},
		{"ctrl-p,ctrl-q", []byte{0x10, 0x11}, false},
		{"ctrl-a,x", []byte{1, 'x'}, false},
		{"ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_", []byte{0, 27, 28, 29, 30, 31}, false},
		{"X", []byte{'X'}, false},
		{"DEL", []byte{0x7f}, false},
		{",", nil, true},
		{"ctrl-p,", nil, true},
		{"ctrl-1", nil, true},
		{"ctrl-A", nil, true},
		{"ab", nil, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDetachKeys(tc.in)
			if tc.bad {
				if err == nil {
					t.Fatalf("got %v, want an error", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestEscapeFilter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		keys   []byte
		reads  []string
		out    string
		detach bool
	}{
		{"plain", DefaultDetachKeys, []string{"ls\r"}, "ls\r", false},
		{"in one read", DefaultDetachKeys, []string{"ab\x10\x11cd"}, "ab", true},
		{"across reads", DefaultDetachKeys, []string{"a\x10", "\x11"}, "a", true},
		{"held then broken", DefaultDetachKeys, []string{"\x10", "x"}, "\x10x", false},
		{"restart on first key", DefaultDetachKeys, []string{"\x10\x10\x11"}, "\x10", true},
		{"single key", []byte{'q'}, []string{"abq"}, "ab", true},
		{"three keys broken late", []byte{1, 2, 3}, []string{"\x01\x02x\x01\x02\x03"}, "\x01\x02x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := escapeFilter{keys: tc.keys}
			var out []byte
			detach := false
			for _, r := range tc.reads {
				o, d := f.filter([]byte(r))
				out = append(out, o...)
				if d {
					detach = true
					break
				}
			}
			if string(out) != tc.out || detach != tc.detach {
				t.Fatalf("got %q detach=%v, want %q detach=%v", out, detach, tc.out, tc.detach)
			}
		})
	}
}
