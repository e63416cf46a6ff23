package cgroups

import (
	"slices"
	"strconv"
	"strings"

	"github.com/cfs-org/cfs/internal/errdefs"
)

// parseList parses a kernel CPU or memory-node list such as "0-3,8,10-11"
// (cpuset(7) "List format") into a set. An empty list is an empty set.
func parseList(s string) (map[int]bool, error) {
	set := map[int]bool{}
	s = strings.TrimSpace(s)
	if s == "" {
		return set, nil
	}
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return nil, errdefs.Invalidf("list %q: bad number %q", s, lo)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return nil, errdefs.Invalidf("list %q: bad range %q", s, part)
			}
		}
		if b-a > 1<<16 {
			return nil, errdefs.Invalidf("list %q: range %q too large", s, part)
		}
		for i := a; i <= b; i++ {
			set[i] = true
		}
	}
	return set, nil
}

// missingFromList returns, as a list string, the members of want that
// are not in have (both in list format), or "" when want ⊆ have.
func missingFromList(want, have string) (string, error) {
	w, err := parseList(want)
	if err != nil {
		return "", err
	}
	h, err := parseList(have)
	if err != nil {
		return "", err
	}
	var missing []int
	for i := range w {
		if !h[i] {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return "", nil
	}
	slices.Sort(missing)
	out := make([]string, len(missing))
	for i, n := range missing {
		out[i] = strconv.Itoa(n)
	}
	return strings.Join(out, ","), nil
}
