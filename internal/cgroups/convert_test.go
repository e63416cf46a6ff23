package cgroups

import (
	"errors"
	"testing"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func TestCPUSharesToWeight(t *testing.T) {
	// Expected values from weight = ceil(10^((l²+125l)/612 − 7/34)),
	// l = log2(shares), computed independently (Python, float64).
	tests := []struct{ shares, weight uint64 }{
		{0, 0}, // unset stays unset
		{1, 1}, // below the v1 minimum: clamped
		{2, 1}, // v1 minimum -> v2 minimum
		{3, 2},
		{10, 4},
		{100, 17},
		{512, 59},
		{1000, 99},
		{1024, 100}, // v1 default -> v2 default (the old formula gave 39)
		{2048, 174},
		{4096, 303},
		{10000, 627},
		{100000, 4340},
		{262143, 10000},
		{262144, 10000}, // v1 maximum -> v2 maximum
		{1 << 20, 10000},
	}
	for _, tc := range tests {
		if got := CPUSharesToWeight(tc.shares); got != tc.weight {
			t.Errorf("CPUSharesToWeight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
	// Monotonic and in range over the whole v1 range.
	prev := uint64(0)
	for s := uint64(minShares); s <= maxShares; s++ {
		w := CPUSharesToWeight(s)
		if w < prev || w < minWeight || w > maxWeight {
			t.Fatalf("CPUSharesToWeight(%d) = %d after %d", s, w, prev)
		}
		prev = w
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	tests := []struct {
		in   uint16
		want uint64
	}{
		{0, 0}, {10, 1}, {100, 910}, {500, 4950}, {1000, 10000}, {5, 1}, {2000, 10000},
	}
	for _, tc := range tests {
		if got := BlkioWeightToIOWeight(tc.in); got != tc.want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	tests := []struct {
		name          string
		memsw, memory int64
		want          int64
		set           bool
		err           error
	}{
		{"both unset", 0, 0, 0, false, nil},
		{"memory unlimited, swap unset", 0, -1, -1, true, nil},
		{"swap unlimited", -1, 100, -1, true, nil},
		{"swap unset", 0, 100, 0, false, nil},
		{"memory unlimited, swap set", 300, -1, 300, true, nil},
		{"subtract", 300, 100, 200, true, nil},
		{"no swap", 100, 100, 0, true, nil},
		{"swap below memory", 50, 100, 0, false, errdefs.ErrInvalid},
		{"swap without memory", 300, 0, 0, false, errdefs.ErrInvalid},
		{"bad memory", 300, -5, 0, false, errdefs.ErrInvalid},
		{"bad swap", -5, 100, 0, false, errdefs.ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, set, err := SwapToV2(tc.memsw, tc.memory)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && (got != tc.want || set != tc.set) {
				t.Errorf("SwapToV2(%d, %d) = %d, %v; want %d, %v", tc.memsw, tc.memory, got, set, tc.want, tc.set)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		ok   bool
	}{
		{"", nil, true},
		{"0", []int{0}, true},
		{"0-3", []int{0, 1, 2, 3}, true},
		{"0-1,4,6-7\n", []int{0, 1, 4, 6, 7}, true},
		{"3-1", nil, false},
		{"a", nil, false},
		{"-1", nil, false},
		{"1,,2", nil, false},
	}
	for _, tc := range tests {
		got, err := parseList(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseList(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("parseList(%q) = %v, want %v", tc.in, got, tc.want)
		}
		for _, c := range tc.want {
			if !got[c] {
				t.Errorf("parseList(%q) lacks %d", tc.in, c)
			}
		}
	}
	for _, tc := range []struct{ want, have, missing string }{
		{"0-1", "0-3", ""},
		{"0-5", "0-3", "4,5"},
		{"10,2", "0-3", "10"},
		{"", "0", ""},
	} {
		got, err := missingFromList(tc.want, tc.have)
		if err != nil || got != tc.missing {
			t.Errorf("missingFromList(%q, %q) = %q, %v; want %q", tc.want, tc.have, got, err, tc.missing)
		}
	}
}
