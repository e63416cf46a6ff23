package image

import (
	"errors"
	"math/rand/v2"
	"regexp"
	"strings"
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

// TestNameGrammarMatchesRegexp checks the hand-written checks against the
// distribution project's regular expressions on many generated names.
func TestNameGrammarMatchesRegexp(t *testing.T) {
	path := `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
	dc := `(?:[a-z0-9]|[a-z0-9][a-z0-9-]*[a-z0-9])`
	domain := dc + `(?:\.` + dc + `)*(?::[0-9]+)?`
	repoRE := regexp.MustCompile(`^(?:` + domain + `/)?` + path + `(?:/` + path + `)*$`)
	tagRE := regexp.MustCompile(`^[a-z0-9_][a-z0-9_.-]{0,127}$`)
	alphabet := "ab09._-/:A é"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		b := make([]byte, 1+rng.IntN(12))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		s := string(b)
		if got, want := validRepository(s), repoRE.MatchString(s); got != want {
			t.Fatalf("validRepository(%q) = %v, regexp says %v", s, got, want)
		}
		if got, want := validTag(s), tagRE.MatchString(s); got != want {
			t.Fatalf("validTag(%q) = %v, regexp says %v", s, got, want)
		}
	}
	long := strings.Repeat("a", 129)
	if validTag(long) || !validTag(long[:128]) {
		t.Fatal("tag length limit")
	}
}
