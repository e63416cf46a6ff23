package snapshot

import (
	"reflect"
	"strings"
	"testing"

	"github.com/cfs-org/cfs/internal/mount"
)

func TestVolatile(t *testing.T) {
	in := []mount.Mount{
		{Source: "overlay", Type: "overlay", Data: "lowerdir=/l,upperdir=/u,workdir=/w"},
		{Source: "/x", Target: "/y", Flags: mount.BIND},
	}
	out := Volatile(in)
	if out[0].Data != "lowerdir=/l,upperdir=/u,workdir=/w,volatile" {
		t.Errorf("overlay data %q", out[0].Data)
	}
	if !reflect.DeepEqual(out[1], in[1]) {
		t.Errorf("a bind mount changed: %+v", out[1])
	}
	if strings.Contains(in[0].Data, "volatile") {
		t.Error("Volatile changed its input")
	}
}
