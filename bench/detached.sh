#!/usr/bin/env bash
# Detached containers (make bench): N `cfs run -d busybox sleep` started one
# after another and then removed with one `cfs rm -f`, against `runc run -d`
# and `crun run -d` of an equivalent bundle in the same run (when they are
# installed; deleted one by one, as they have no bulk delete); and the memory the supervision of
# a running container costs (PSS from /proc/PID/smaps_rollup): the shared
# supervisor's growth per container, and each container's init. Between 1
# and 50 containers the supervisor's growth is mostly garbage its heap holds
# until a collection; over MANY containers the figure is what they cost.
# Needs root and bin/cfs. Knobs: N (50), MANY (0: also start MANY sleeping
# containers and report the memory, e.g. MANY=1000).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50}
MANY=${MANY:-0}
[ "$(id -u)" = 0 ] || { echo "bench/detached: needs root" >&2; exit 1; }
cfs=$PWD/bin/cfs
work=$(mktemp -d /tmp/cfs-bench-detached.XXXXXX)
export CFS_ROOT=$work/root
had_parent=$(ls -d /sys/fs/cgroup/*/cfs 2>/dev/null | head -1 || true)
cg=/cfs-bench-detached-$$ # parent cgroup of the runc and crun containers
cleanup() {
	set +e
	for r in runc crun; do
		[ -d "$work/$r-root" ] || continue
		for id in $("$r" --root "$work/$r-root" list -q 2>/dev/null); do
			in_ns "$r" --root "$work/$r-root" delete -f "$id" >/dev/null 2>&1
		done
	done
	for d in /sys/fs/cgroup/*/"${cg#/}"; do
		[ -d "$d" ] || continue
		for sub in "$d"/*/; do [ -d "$sub" ] && rmdir "$sub"; done
		rmdir "$d"
	done
	ids=$("$cfs" ps -aq 2>/dev/null)
	[ -z "$ids" ] || "$cfs" rm -f $ids >/dev/null 2>&1
	sup=$(cat /run/cfs/sup-*.pid 2>/dev/null | head -0)
	for i in $(seq 100); do
		pgrep -f "__cfs_supervisor $CFS_ROOT" >/dev/null || break
		sleep 0.05
	done
	if [ -z "$had_parent" ]; then
		for d in /sys/fs/cgroup/*/cfs; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
	fi
	rm -rf "$work"
}
trap cleanup EXIT INT TERM
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
ms() { date +%s%N; }
hybrid=no
[ -f /sys/fs/cgroup/unified/cgroup.controllers ] && hybrid=yes
: >"$work/empty"
# in_ns runs "$@" in a private mount namespace where, on a hybrid host,
# cgroup2's cgroup.controllers reads empty (crun 1.8 refuses such a host
# otherwise; runc runs the same way, for the same conditions).
in_ns() {
	W=$work HYBRID=$hybrid unshare -m --propagation private sh -c '
		[ "$HYBRID" = yes ] && mount --bind "$W/empty" /sys/fs/cgroup/unified/cgroup.controllers
		exec "$@"' in_ns "$@"
}

"$cfs" run --rm busybox true # make the image
"$cfs" run -d busybox sleep 100000 >/dev/null
sup=$(pgrep -f "__cfs_supervisor $CFS_ROOT" | head -1)
sup1=$(pss "$sup")
"$cfs" rm -f $("$cfs" ps -q) >/dev/null

t0=$(ms)
for i in $(seq "$N"); do "$cfs" run -d busybox sleep 100000 >/dev/null; done
t1=$(ms)
supN=$(pss "$sup")
inits=0
for p in $(pgrep -f __cfs_init); do
	if grep -q "$CFS_ROOT" "/proc/$p/cmdline" 2>/dev/null || true; then inits=$((inits + $(pss "$p"))); fi
done
ninit=$(pgrep -fc __cfs_init || true)
t2=$(ms)
"$cfs" rm -f $("$cfs" ps -q) >/dev/null
t3=$(ms)

printf '| what | value |\n|---|--:|\n'
printf '| %d × `cfs run -d busybox sleep`, one after another | %d ms (%.1f ms each) |\n' "$N" $(((t1 - t0) / 1000000)) "$(echo "($t1 - $t0) / 1000000 / $N" | bc -l)"
# The same with runc and crun, when installed: N bundles of one busybox
# rootfs (runbench bundle), each container in its own cgroup under $cg.
for r in runc crun; do
	command -v "$r" >/dev/null && command -v go >/dev/null || continue
	[ -x "$work/runbench" ] || go build -o "$work/runbench" ./bench/cmd/runbench
	[ -d "$work/rootfs-bundle" ] || "$work/runbench" bundle -cgroup "$cg/x" "$work/rootfs-bundle"
	mkdir -p "$work/$r-root"
	for i in $(seq "$N"); do
		"$work/runbench" bundle -cgroup "$cg/$r$i" -args "sleep 100000" -root "$work/rootfs-bundle/rootfs" "$work/$r-b$i"
	done
	loop='for i in $(seq "$N"); do "$R" --root "$W/$R-root" run -d --bundle "$W/$R-b$i" "$R$i" </dev/null >/dev/null 2>&1 || { echo "$R run -d failed" >&2; exit 1; }; done'
	r0=$(ms)
	N=$N R=$r in_ns sh -c "$loop" || continue
	r1=$(ms)
	del='for i in $(seq "$N"); do "$R" --root "$W/$R-root" delete -f "$R$i" >/dev/null 2>&1; done'
	N=$N R=$r in_ns sh -c "$del"
	r2=$(ms)
	printf '| %d × `%s run -d` of a busybox bundle (sleep), one after another | %d ms (%.1f ms each) |\n' "$N" "$r" $(((r1 - r0) / 1000000)) "$(echo "($r1 - $r0) / 1000000 / $N" | bc -l)"
	printf '| `%s delete -f` of all %d, one after another | %d ms |\n' "$r" "$N" $(((r2 - r1) / 1000000))
done
printf '| `cfs rm -f` of all %d | %d ms |\n' "$N" $(((t3 - t2) / 1000000))
printf '| supervisor PSS with 1 / %d containers | %d KiB / %d KiB (%.1f KiB per container) |\n' "$N" "$sup1" "$supN" "$(echo "($supN - $sup1) / ($N - 1)" | bc -l)"
printf '| container init PSS, mean of %d | %d KiB |\n' "$ninit" $((inits / (ninit > 0 ? ninit : 1)))

if [ "$MANY" -gt 0 ]; then
	free0=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
	t0=$(ms)
	for i in $(seq "$MANY"); do "$cfs" run -d busybox sleep 100000 >/dev/null || { echo "failed at $i" >&2; break; }; done
	t1=$(ms)
	n=$("$cfs" ps -q | wc -l)
	free=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
	# The supervisor of the first phase exited once idle (the runc and
	# crun phases take longer than its 2 s): this is a new one.
	sup=$(pgrep -f "__cfs_supervisor $CFS_ROOT" | head -1)
	supM=$(pss "$sup")
	printf '| %d sleeping containers started | %d running, %d s, MemAvailable down %d MiB, supervisor PSS %d KiB (%.1f KiB per container) |\n' "$MANY" "$n" $(((t1 - t0) / 1000000000)) $(((free0 - free) / 1024)) "$supM" "$(echo "($supM - $sup1) / $MANY" | bc -l)"
fi
