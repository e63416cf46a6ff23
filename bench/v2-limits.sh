#!/bin/sh
# Runs inside the cgroup v2 VM (make bench-v2): cfs run --rm busybox true,
# with and without limits,
# in alternating batches of 10 (busybox date has no %N: /proc/uptime).
export CFS_ROOT=/tmp/r
mkdir -p $CFS_ROOT
/payload/cfs run --rm busybox true >/dev/null 2>&1
cs() { read u _ < /proc/uptime; echo "${u%.*}${u#*.}"; }
a=0; b=0
for r in 1 2 3; do
  t0=$(cs); for i in 1 2 3 4 5 6 7 8 9 10; do /payload/cfs run --rm busybox true; done
  t1=$(cs); for i in 1 2 3 4 5 6 7 8 9 10; do /payload/cfs run --rm --memory 64m --cpus 1 --pids-limit 100 --cpu-weight 50 busybox true; done
  t2=$(cs); a=$((a + t1 - t0)); b=$((b + t2 - t1))
done
echo "v2 VM (TCG): without limits $((a / 3)) ms, with memory+cpus+pids+cpu-weight limits $((b / 3)) ms (mean of 30 runs each)"
echo "ratio with/without: $((b * 100 / a))%"
