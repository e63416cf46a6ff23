package engine

import (
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// DefaultDetachKeys is Docker's detach sequence: ctrl-p, ctrl-q.
var DefaultDetachKeys = []byte{0x10, 0x11}

// ParseDetachKeys reads Docker's --detach-keys format: comma-separated
// keys, each a single character or "ctrl-X" with X one of a-z @ [ \ ] ^ _
// (also "DEL"). An empty string gives DefaultDetachKeys.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return DefaultDetachKeys, nil
	}
	var keys []byte
	for _, k := range strings.Split(s, ",") {
		switch {
		case len(k) == 1:
			keys = append(keys, k[0])
		case k == "DEL":
			keys = append(keys, 0x7f)
		case len(k) == 6 && strings.HasPrefix(k, "ctrl-") && ctrlKey(k[5]):
			keys = append(keys, k[5]&0x1f) // ctrl-a is 1, ctrl-@ 0, ctrl-_ 31
		default:
			return nil, errdefs.Invalidf("Invalid detach keys (%s) provided: unknown key %q", s, k)
		}
	}
	return keys, nil
}

func ctrlKey(c byte) bool {
	return c >= 'a' && c <= 'z' || strings.IndexByte("@[\\]^_", c) >= 0
}

// escapeFilter finds the detach sequence in what the user types. Bytes
// that may begin the sequence are held back until it is complete (detach)
// or broken (then they are passed on), as Docker does.
type escapeFilter struct {
	keys []byte
	pos  int // how many of keys have matched
}

// filter returns the part of p to pass on and whether the sequence is
// complete; what follows the sequence is dropped.
func (f *escapeFilter) filter(p []byte) (out []byte, detach bool) {
	for _, b := range p {
		if b != f.keys[f.pos] && f.pos > 0 {
			out = append(out, f.keys[:f.pos]...)
			f.pos = 0
		}
		if b == f.keys[f.pos] {
			f.pos++
			if f.pos == len(f.keys) {
				return out, true
			}
			continue
		}
		out = append(out, b)
	}
	return out, false
}
