package runtime

import (
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// A hook that exits without reading its standard input must not raise
// SIGPIPE in the runtime: the container's init subscribes to every signal
// and would forward it to the program. The state is larger than a pipe's
// buffer, so a writer that feeds a pipe while the hook runs would get
// EPIPE every time. The state still reaches a hook that reads it.
func TestHookIgnoringStdinRaisesNoSIGPIPE(t *testing.T) {
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("needs /bin/sh")
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGPIPE)
	defer signal.Stop(sigs)
	state := &specs.State{Version: specs.Version, ID: "c", Status: specs.StateCreated,
		Annotations: map[string]string{"big": strings.Repeat("x", 256<<10)}}
	got := filepath.Join(t.TempDir(), "state")
	hooks := []specs.Hook{
		{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 0"}},
		{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + got}},
	}
	if err := RunHooks(HookStartContainer, hooks, state, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-sigs:
		t.Errorf("running a hook that ignores its stdin raised %v", s)
	case <-time.After(200 * time.Millisecond):
	}
	want, _ := json.Marshal(state)
	if b, _ := os.ReadFile(got); string(b) != string(want) {
		t.Errorf("the hook read %d bytes of state, want %d", len(b), len(want))
	}
}
