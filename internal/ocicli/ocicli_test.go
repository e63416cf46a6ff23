package ocicli

import (
	"syscall"
	"testing"
)

func TestCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		in, id  string
		systemd bool
		want    string
		err     bool
	}{
		{"", "abc", false, "/cfs-runtime/abc", false},
		{"/a/b", "x", false, "/a/b", false},
		{"/a/../b", "x", false, "/b", false},
		{"a/b", "x", false, "/cfs-runtime/a/b", false},
		{"machine.slice:libpod:abc", "abc", true, "/machine.slice/libpod-abc.scope", false},
		{"system.slice:cri-containerd:abc", "abc", false, "/system.slice/cri-containerd-abc.scope", false},
		{"kubepods-burstable-pod1.slice:cri:abc", "abc", true,
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-abc.scope", false},
		{":p:abc", "abc", true, "/system.slice/p-abc.scope", false},
		{"/a/b", "x", true, "", true},
		{"bad:p:abc", "abc", true, "", true},
	} {
		got, err := cgroupPath(tc.in, tc.id, tc.systemd)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("cgroupPath(%q, systemd=%v) = %q, %v; want %q (error %v)", tc.in, tc.systemd, got, err, tc.want, tc.err)
		}
	}
}

func TestParseSignal(t *testing.T) {
	for in, want := range map[string]syscall.Signal{
		"KILL": syscall.SIGKILL, "SIGTERM": syscall.SIGTERM, "sigint": syscall.SIGINT, "9": syscall.SIGKILL,
		"15": syscall.SIGTERM, "SIGRTMIN+1": 35, "RTMAX-1": 63, "hup": syscall.SIGHUP,
	} {
		got, err := parseSignal(in)
		if err != nil || got != want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "NOPE", "0", "65", "-1"} {
		if _, err := parseSignal(bad); err == nil {
			t.Errorf("parseSignal(%q): no error", bad)
		}
	}
}

func TestCheckVersion(t *testing.T) {
	for _, ok := range []string{"1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0", "1.3.0-rc.1"} {
		if err := checkVersion(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "invalid", "2.0.0", "1.4.0", "1.10.0", "0.9.0", "1.0"} {
		if err := checkVersion(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
