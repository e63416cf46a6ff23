package cgroups

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/cfs-org/cfs/internal/errdefs"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func u32(v uint32) *uint32 { return &v }
func boolp(v bool) *bool   { return &v }

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		r    specs.LinuxResources
		want string // substring of the error; "" means valid
	}{
		{"empty", specs.LinuxResources{}, ""},
		{"memory ok", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20), Swap: i64(2 << 20)}}, ""},
		{"memory unlimited", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}}, ""},
		{"memory negative", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-2)}}, "memory.limit -2"},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2 << 20), Swap: i64(1 << 20)}}, "memory.swap"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}, "memory.swappiness 101"},
		{"shares low", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1)}}, "cpu.shares 1"},
		{"shares high", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(300000)}}, "cpu.shares 300000"},
		{"quota low", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(500)}}, "cpu.quota 500"},
		{"quota unlimited", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}}, ""},
		{"period", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(2000000)}}, "cpu.period"},
		{"burst over quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(50000), Burst: u64(60000)}}, "cpu.burst"},
		{"idle", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(2)}}, "cpu.idle 2"},
		{"cpus syntax", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-x"}}, "cpu.cpus"},
		{"mems syntax", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "1-0"}}, "cpu.mems"},
		{"blkio weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(5)}}, "blockIO.weight 5"},
		{"blkio device weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{Weight: u16(2000)}}}}, "blockIO.weightDevice.weight 2000"},
		{"blkio device", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1}}}}}, "blockIO.throttle"},
		{"hugepage size", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M"}}}, "hugepageLimits.pageSize"},
		{"hugepage ok", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}}}, ""},
		{"net prio name", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "eth0 1"}}}}, "network.priorities"},
		{"device type", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, "devices: bad type"},
		{"device access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwx"}}}, "devices: bad access"},
		{"unified path", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, "unified"},
		{"unified procs", specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, "unified"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(&tc.r)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalid containing %q", err, tc.want)
			}
		})
	}
}

func TestDeviceRule(t *testing.T) {
	tests := []struct {
		d    specs.LinuxDeviceCgroup
		want string
	}{
		{specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}, "a *:* rwm"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, "c 1:3 rwm"},
		{specs.LinuxDeviceCgroup{Type: "c", Major: i64(136), Access: "rw"}, "c 136:* rw"},
		{specs.LinuxDeviceCgroup{Type: "b", Major: i64(8), Minor: i64(0)}, "b 8:0 rwm"},
	}
	for _, tc := range tests {
		got, err := deviceRule(tc.d)
		if err != nil || got != tc.want {
			t.Errorf("deviceRule(%+v) = %q, %v; want %q", tc.d, got, err, tc.want)
		}
	}
}
