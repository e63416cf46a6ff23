package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/cfs-org/cfs/internal/engine"
)

func TestStatsSizes(t *testing.T) {
	for n, want := range map[uint64]string{0: "0B", 999: "999B", 1000: "1kB", 1536000: "1.54MB"} {
		if got := decimalSize(n); got != want {
			t.Errorf("decimalSize(%d) = %q, want %q", n, got, want)
		}
	}
	for n, want := range map[uint64]string{0: "0B", 1024: "1KiB", 1536 << 10: "1.5MiB", 23 << 30: "23GiB"} {
		if got := bytesSize(n); got != want {
			t.Errorf("bytesSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestStatsFormats(t *testing.T) {
	rows := []statsRow{{Container: "abc", Name: "web", ID: "abc", CPUPerc: "50.00%", MemUsage: "1MiB / 2MiB",
		MemPerc: "50.00%", NetIO: "--", BlockIO: "0B / 0B", PIDs: "3"}}
	for format, want := range map[string]string{
		"":                           "CONTAINER ID   NAME   CPU %    MEM USAGE / LIMIT   MEM %    BLOCK I/O   PIDS\nabc            web    50.00%   1MiB / 2MiB         50.00%   0B / 0B     3\n",
		"json":                       `{"Container":"abc","Name":"web","ID":"abc","CPUPerc":"50.00%","MemUsage":"1MiB / 2MiB","MemPerc":"50.00%","NetIO":"--","BlockIO":"0B / 0B","PIDs":"3"}` + "\n",
		"{{.Name}}: {{.CPUPerc}}":    "web: 50.00%\n",
		`table {{.Name}}\t{{.PIDs}}`: "NAME   PIDS\nweb    3\n",
	} {
		p, err := newStatsPrinter(format, false)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := p.print(&b, rows); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("format %q:\n%s\nwant:\n%s", format, b.String(), want)
		}
	}
	if _, err := newStatsPrinter("{{.Name", false); err == nil || !strings.Contains(err.Error(), "--format") {
		t.Errorf("bad template: %v", err)
	}
}

func TestLimitFlags(t *testing.T) {
	var r engine.ResourceOptions
	f := pflag.NewFlagSet("x", pflag.ContinueOnError)
	addResourceFlags(f, &r)
	err := f.Parse([]string{"-m", "1.5g", "--memory-swap", "-1", "--cpus", "0.5", "--pids-limit", "0",
		"--oom-kill-disable", "--device-write-bps", "/dev/sda:2mb", "--device-read-iops", "/dev/sda:100",
		"--net-cls-classid", "0x100001", "--net-prio", "eth0=3", "-c", "512", "--cgroup-parent", "p"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Memory != 3<<29 || r.MemorySwap != -1 || r.NanoCPUs != 5e8 || r.PidsLimit == nil || *r.PidsLimit != 0 ||
		r.OomKillDisable == nil || !*r.OomKillDisable || r.CPUShares != 512 || r.CgroupParent != "p" ||
		r.BlkioDeviceWriteBps[0] != (engine.ThrottleDevice{Path: "/dev/sda", Rate: 2 << 20}) ||
		r.BlkioDeviceReadIOps[0].Rate != 100 || r.NetClassID != 0x100001 || r.NetPriorities[0] != (engine.NetPriority{Name: "eth0", Priority: 3}) {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range [][]string{{"--memory", "1x"}, {"--cpus", "x"}, {"--device-write-bps", "/dev/sda"},
		{"--device-write-bps", "sda:1m"}, {"--device-read-iops", "/dev/sda:1.5"}, {"--net-prio", "eth0"}, {"--net-cls-classid", "-1"}} {
		f := pflag.NewFlagSet("x", pflag.ContinueOnError)
		f.SetOutput(&bytes.Buffer{})
		addResourceFlags(f, &engine.ResourceOptions{})
		if err := f.Parse(bad); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}
