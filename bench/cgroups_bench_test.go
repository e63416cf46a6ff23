// Package bench holds benchmarks; bench/run.sh runs them all (make bench).
package bench

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/cfs-org/cfs/internal/cgroups"
)

// BenchmarkCgroupLifecycle is what a container's cgroup costs cfs on this
// host: New, Create (every hierarchy, parents included: the parent goes when
// its last container does), Add of a live process, and Destroy after that
// process has exited and been reaped, as at the end of "cfs run --rm". Each
// phase is timed alone and reported as a median in µs; starting, killing
// and reaping the process are not timed. ns/op is a mean that also carries
// the testing package's Start/StopTimer overhead: read total-µs instead.
//
//	go test -run XXX -bench CgroupLifecycle -benchtime 200x ./bench/
func BenchmarkCgroupLifecycle(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: creates cgroups")
	}
	host, err := cgroups.DetectHost()
	if err != nil {
		b.Skipf("no usable cgroup host: %v", err)
	}
	parent := fmt.Sprintf("/cfs-bench-%d-%x", os.Getpid(), rand.Uint32())
	b.Cleanup(func() { removeParent(host, parent) })

	var create, add, destroy, total []time.Duration
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		child := exec.Command("/bin/sleep", "60")
		if err := child.Start(); err != nil {
			b.Fatalf("starting a child to add: %v", err)
		}
		m, err := cgroups.New(host, fmt.Sprintf("%s/%d", parent, i), nil)
		if err != nil {
			b.Fatal(err)
		}

		b.StartTimer()
		t0 := time.Now()
		err = m.Create()
		t1 := time.Now()
		if err == nil {
			err = m.Add(child.Process.Pid)
		}
		t2 := time.Now()
		b.StopTimer()

		child.Process.Kill()
		child.Wait()
		if err != nil {
			m.Destroy()
			b.Fatal(err)
		}

		b.StartTimer()
		t3 := time.Now()
		err = m.Destroy()
		t4 := time.Now()
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		create = append(create, t1.Sub(t0))
		add = append(add, t2.Sub(t1))
		destroy = append(destroy, t4.Sub(t3))
		total = append(total, t2.Sub(t0)+t4.Sub(t3))
	}
	b.ReportMetric(median(create), "create-µs")
	b.ReportMetric(median(add), "add-µs")
	b.ReportMetric(median(destroy), "destroy-µs")
	b.ReportMetric(median(total), "total-µs")
	b.ReportMetric(float64(len(host.Hierarchies)), "hierarchies")
}

func median(d []time.Duration) float64 {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return float64(s[len(s)/2]) / float64(time.Microsecond)
}

// removeParent removes what a failed iteration may have left: the parent's
// empty leaves, then the parent, in every hierarchy (rmdir only, so a
// cgroup that still holds a process is never forced).
func removeParent(host *cgroups.Host, parent string) {
	for _, h := range host.Hierarchies {
		dir := filepath.Join(h.Mount, parent)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		os.Remove(dir)
	}
}
