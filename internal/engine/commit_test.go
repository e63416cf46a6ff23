package engine

import (
	"reflect"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestApplyChanges(t *testing.T) {
	cfg := ocispec.ImageConfig{Env: []string{"PATH=/bin", "A=1"}, Cmd: []string{"sh"}}
	err := applyChanges(&cfg, []string{
		`CMD ["echo", "hi"]`,
		`ENTRYPOINT /bin/run --fast`,
		`ENV A=2 B="two words"`,
		`ENV C 3`,
		`WORKDIR /srv`,
		`user 1000:1000`,
		`LABEL x=y`,
		`EXPOSE 80 53/udp`,
		`STOPSIGNAL SIGINT`,
		`VOLUME ["/data"]`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ocispec.ImageConfig{
		Env:          []string{"PATH=/bin", "A=2", "B=two words", "C=3"},
		Cmd:          []string{"echo", "hi"},
		Entrypoint:   []string{"/bin/sh", "-c", "/bin/run --fast"},
		WorkingDir:   "/srv",
		User:         "1000:1000",
		Labels:       map[string]string{"x": "y"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		StopSignal:   "SIGINT",
		Volumes:      map[string]struct{}{"/data": {}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
	if err := applyChanges(&cfg, []string{"RUN rm -rf /"}); err == nil {
		t.Errorf("RUN accepted")
	}
}
