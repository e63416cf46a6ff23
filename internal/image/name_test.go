package image

import (
	"errors"
	"testing"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func TestNormalizeName(t *testing.T) {
	tests := []struct {
		in, want string
		invalid  bool
	}{
		{in: "busybox", want: "busybox:latest"},
		{in: "BusyBox", want: "busybox:latest"},
		{in: "SlitazOS", want: "slitazos:latest"},
		{in: "TINYCORE:7.0", want: "tinycore:7.0"},
		{in: "  tinycore  ", want: "tinycore:latest"},
		{in: "my_app-2:V1_x.y-z", want: "my_app-2:v1_x.y-z"},
		{in: "library/alpine", want: "library/alpine:latest"},
		{in: "localhost:5000/app", want: "localhost:5000/app:latest"},
		{in: "localhost:5000/team/app:1", want: "localhost:5000/team/app:1"},
		{in: "a__b", want: "a__b:latest"},
		{in: "", invalid: true},
		{in: "bad name", invalid: true},
		{in: "bad/", invalid: true},
		{in: "-lead", invalid: true},
		{in: "trail-", invalid: true},
		{in: "a..b", invalid: true},
		{in: "x:", invalid: true},
		{in: "x:-tag", invalid: true},
		{in: "x:a/b", invalid: true},
		{in: "x@sha256:abcd", invalid: true},
		{in: "../etc", invalid: true},
		{in: "é", invalid: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeName(tc.in)
			if tc.invalid {
				if !errors.Is(err, errdefs.ErrInvalid) {
					t.Fatalf("NormalizeName(%q) = %q, %v; want ErrInvalid", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("NormalizeName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestIsHexPrefix(t *testing.T) {
	for s, want := range map[string]bool{"abc123": true, "": false, "xyz": false, "ABC": false} {
		if got := isHexPrefix(s); got != want {
			t.Errorf("isHexPrefix(%q) = %v", s, got)
		}
	}
}
