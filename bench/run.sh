#!/usr/bin/env bash
# Start-up benchmark (make bench): "cfs run --rm --network none busybox true"
# against runc and crun running an equivalent busybox OCI bundle, plus the
# cost floor (a Go re-exec into new namespaces) and the cgroup cost.
# bench/cmd/runbench times the commands alternately (A B C A B C ..., since
# the machine is noisy); the table goes to stdout and bench/results.md.
#
# crun 1.8 refuses a hybrid cgroup host unless /sys/fs/cgroup/unified/
# cgroup.controllers reads empty, so on such a host every timed command (cfs
# and runc too, for the same conditions at no per-run cost) runs in one
# private mount namespace where an empty file is bound over it.
#
# Needs root, bin/cfs (make build), runc, crun and go. Knobs:
# RUNS (timed runs per command, 300), WARMUP (rounds, 5), CGROUP_N (200).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-300}
WARMUP=${WARMUP:-5}
CGROUP_N=${CGROUP_N:-200}

die() { echo "bench: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (namespaces, cgroups, mounts)"
for t in runc crun go unshare; do
	command -v "$t" >/dev/null || die "$t not found (make bench installs runc and crun)"
done
[ -x bin/cfs ] || die "bin/cfs missing: run make build"

work=$(mktemp -d /tmp/cfs-bench.XXXXXX)
cg=/cfs-bench-$$ # parent cgroup of the runc and crun containers
cfs=$PWD/bin/cfs
export CFS_ROOT=$work/cfs-root
pid=
# cfs keeps its /cfs parent cgroup between containers; remove it at the end
# unless it was there before.
had_parent=$(ls -d /sys/fs/cgroup/*/cfs 2>/dev/null | head -1 || true)

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" # runbench stops after the command it is running
		wait "$pid" 2>/dev/null
	fi
	for r in runc crun; do
		for id in $("$r" --root "$work/$r-root" list -q 2>/dev/null); do
			"$r" --root "$work/$r-root" delete -f "$id" >/dev/null 2>&1
		done
	done
	for id in $("$PWD/bin/cfs-runtime" --root "$work/cfsrt-root" list -q 2>/dev/null); do
		"$PWD/bin/cfs-runtime" --root "$work/cfsrt-root" delete -f "$id" >/dev/null 2>&1
	done
	if [ -d "$CFS_ROOT" ]; then
		ids=$("$cfs" ps -aq 2>/dev/null)
		[ -z "$ids" ] || "$cfs" rm -f $ids >/dev/null 2>&1
	fi
	for d in /sys/fs/cgroup/*/"${cg#/}" /sys/fs/cgroup/"${cg#/}"; do
		[ -d "$d" ] || continue
		for sub in "$d"/*/; do [ -d "$sub" ] && rmdir "$sub"; done
		rmdir "$d"
	done
	if [ -z "$had_parent" ]; then
		for d in /sys/fs/cgroup/*/cfs; do [ -d "$d" ] && rmdir "$d" 2>/dev/null; done
	fi
	# Mounts are all made in the private namespace; this is a safety net.
	findmnt -rn -o TARGET | grep "^$work/" | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

echo "bench: preparing (runbench, OCI bundle, cfs image) in $work" >&2
go build -o "$work/runbench" ./bench/cmd/runbench
"$work/runbench" bundle -cgroup "$cg/ctr" "$work/bundle"
mkdir "$work/runc-root" "$work/crun-root" "$work/cfsrt-root"
"$cfs" run --rm --network none busybox true # creates the busybox image once
: >"$work/empty"

hybrid=no
[ -f /sys/fs/cgroup/unified/cgroup.controllers ] && hybrid=yes

# Runs "$@" in a private mount namespace, on a hybrid host with
# cgroup.controllers of cgroup2 hidden, after checking that runc and crun
# start the bundle there (exit 0).
inner='
set -e
if [ "$HYBRID" = yes ]; then
	mount --bind "$W/empty" /sys/fs/cgroup/unified/cgroup.controllers
fi
runc --root "$W/runc-root" run --bundle "$W/bundle" check-runc || { echo "bench: runc run of the bundle failed" >&2; exit 1; }
crun --root "$W/crun-root" run --bundle "$W/bundle" check-crun || { echo "bench: crun run of the bundle failed" >&2; exit 1; }
exec "$@"'

cmds=(
	"cfs=$cfs run --rm --network none busybox true"
	"cfs-runtime=$PWD/bin/cfs-runtime --root $work/cfsrt-root run --bundle $work/bundle b{n}"
	"runc=runc --root $work/runc-root run --bundle $work/bundle b{n}"
	"crun=crun --root $work/crun-root run --bundle $work/bundle b{n}"
	"floor=$work/runbench floor"
	"exec=/bin/true"
)
if [ "$hybrid" = yes ]; then
	# Control: cfs in the host's mount namespace (where cgroup2 shows
	# hugetlb), entered by nsenter, whose own cost is the next row.
	cmds+=(
		"cfs-hostns=nsenter --mount=/proc/$$/ns/mnt $cfs run --rm --network none busybox true"
		"nsenter=nsenter --mount=/proc/$$/ns/mnt /bin/true"
	)
fi
echo "bench: timing $RUNS runs per command after $WARMUP warm-up rounds, alternating" >&2
W=$work HYBRID=$hybrid unshare -m --propagation private sh -c "$inner" inner \
	"$work/runbench" time -runs "$RUNS" -warmup "$WARMUP" -ratio runc,crun \
	-shorten "$PWD/bin/=" -shorten "$work=\$B" -shorten "/proc/$$/=/proc/\$\$/" \
	"${cmds[@]}" >"$work/table.md" &
pid=$!
wait "$pid"
pid=

echo "bench: cgroup lifecycle, $CGROUP_N iterations" >&2
go test -count=1 -run XXX -bench CgroupLifecycle -benchtime "${CGROUP_N}x" ./bench/ >"$work/cgroups.txt" ||
	{ cat "$work/cgroups.txt" >&2; die "cgroup benchmark failed"; }
metric() { awk -v k="$1" '/^BenchmarkCgroupLifecycle/ { for (i = 2; i < NF; i++) if ($(i+1) == k) printf "%d", $i + 0.5 }' "$work/cgroups.txt"; }

mode=v2
grep -q ' - cgroup ' /proc/self/mountinfo && mode=v1
[ "$mode" = v1 ] && grep -q ' - cgroup2 ' /proc/self/mountinfo && mode="hybrid v1+v2"
{
	echo "# Container start-up: cfs vs runc vs crun"
	echo
	echo "$(date -u +%Y-%m-%d), Linux $(uname -r), $(nproc) CPUs, cgroups $mode," \
		"cfs $(git describe --always --dirty 2>/dev/null || echo '?'), runc $(runc --version | awk 'NR==1 {print $3}')," \
		"crun $(crun --version | awk 'NR==1 {print $3}'). $RUNS runs per command, alternating, after $WARMUP warm-up" \
		"rounds (\`make bench\`, bench/run.sh). Wall time of fork+exec+wait from a Go runner; CPU = user+sys" \
		"of the command and the children it reaped; × = ratio of medians."
	echo
	cat "$work/table.md"
	echo
	echo "- cfs: its own CFS_ROOT, image made in a warm-up. Per run it also mounts an overlay of the read-only"
	echo "  layers with a fresh upper dir, writes /etc/hosts, hostname and resolv.conf, keeps a container record."
	echo "- runc, crun: a ready bundle (\`runc spec\` + busybox rootfs with applet links; args [true], terminal"
	echo "  false, root writable, namespaces pid ipc uts mount network cgroup, cgroupsPath /cfs-bench-PID/ctr)."
	[ "$hybrid" = no ] || {
		echo "- Hybrid host: the runner and so every command ran in one private mount namespace where cgroup2's"
		echo "  cgroup.controllers is bound empty (crun needs it; cfs and runc then see no hugetlb on cgroup2)."
		echo "  Control: cfs-hostns runs cfs in the host's mount namespace via nsenter (cost: the nsenter row)."
	}
	echo "- floor: a Go binary re-executing itself into new mount, pid, uts, ipc, net and cgroup namespaces and exiting."
	echo "- exec: fork+exec+wait of /bin/true, the runner's own overhead."
	echo
	echo "## cgroup lifecycle (internal/cgroups on this host, $(metric hierarchies) hierarchies, $CGROUP_N iterations, medians)"
	echo
	echo "| Create | Add | Destroy | total |"
	echo "|--:|--:|--:|--:|"
	echo "| $(metric create-µs) µs | $(metric add-µs) µs | $(metric destroy-µs) µs | $(metric total-µs) µs |"
	echo
	echo "Create makes the parent and the leaf cgroup in every hierarchy (cpuset filled); Add writes a live pid"
	echo "to every cgroup.procs; Destroy removes leaf and parent after the process was reaped"
	echo "(\`go test -run XXX -bench CgroupLifecycle ./bench/\`)."
} >"$work/results.md"
cp "$work/results.md" bench/results.md
cat bench/results.md
