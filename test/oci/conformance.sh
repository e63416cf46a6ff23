#!/usr/bin/env bash
# OCI runtime conformance: the runtime-tools validation suite against
# cfs-runtime (or any runc-compatible runtime: RUNTIME=runc).
#
# It fetches github.com/opencontainers/runtime-tools at $RTT_VERSION from the
# Go module proxy, vendors it in a writable copy (the module ships
# vendor/modules.txt without the code), builds runtimetest and the 58
# validation/*/*.t executables once (cached in $CACHE), builds the test rootfs
# from the host's busybox-static, and runs every test file in a scratch
# directory with the runtime under its own --root. Between files it deletes
# whatever the test left behind (containers, cgroups it made).
#
# Output: TAP (one line per test file) and a table; the detailed output of
# each file goes to $OUT/<name>.txt. A file passes when it exits 0, prints no
# "not ok", and either prints an "ok" or no diagnostic at all (some files
# only print a diagnostic when they fail). Files listed in
# test/oci/expected-failures.txt may fail (the reason is there); the script
# exits non-zero if any other file fails, or if fewer than $MIN_PASS pass.
#
# Needs root, go, tar, busybox-static. Knobs: RUNTIME (default bin/cfs-runtime),
# ONLY (space-separated test names), MIN_PASS, CACHE, OUT, JOBS-free.
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
RTT_VERSION=${RTT_VERSION:-v0.9.1-0.20260316125833-8a4db579f5c8}
CACHE=${CACHE:-/var/tmp/cfs-oci-conformance/$RTT_VERSION}
OUT=${OUT:-/var/tmp/cfs-oci-conformance/out}
MIN_PASS=${MIN_PASS:-39}
RUNTIME=${RUNTIME:-$REPO/bin/cfs-runtime}
TIMEOUT=${TIMEOUT:-120}

die() { echo "conformance: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root"
command -v go >/dev/null || die "needs go"
[ -x /bin/busybox ] || die "needs busybox-static (/bin/busybox)"
RUNTIME=$(command -v "$RUNTIME") || die "runtime $RUNTIME not found (make build)"

# 1. The suite, built once per version.
if [ ! -x "$CACHE/runtimetest" ] || [ ! -f "$CACHE/.built" ]; then
	echo "conformance: building runtime-tools $RTT_VERSION in $CACHE" >&2
	rm -rf "$CACHE"
	mkdir -p "$CACHE"
	dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/opencontainers/runtime-tools@$RTT_VERSION" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
	[ -d "$dir" ] || die "go mod download of runtime-tools failed"
	cp -r "$dir" "$CACHE/src"
	chmod -R u+w "$CACHE/src"
	(
		cd "$CACHE/src" || exit 1
		export CGO_ENABLED=0 GOFLAGS=-mod=vendor
		GOFLAGS=-mod=mod go mod vendor || exit 1
		go build -tags "netgo osusergo" -o "$CACHE/runtimetest" ./cmd/runtimetest || exit 1
		for f in validation/*/*.go; do
			case $f in validation/util/*) continue ;; esac
			n=$(basename "$(dirname "$f")")
			go build -o "$CACHE/tests/$n.t" "./$f" || exit 1
		done
	) || die "building runtime-tools failed"
	touch "$CACHE/.built"
fi

# 2. Scratch space: the rootfs tarball the tests untar, runtimetest, and a
# wrapper that gives the runtime its own --root.
work=$(mktemp -d /tmp/cfs-oci-conf.XXXXXX)
state=$work/state
had_cgroups=$(ls -d /sys/fs/cgroup/*/cgrouptest /sys/fs/cgroup/*/testdir /sys/fs/cgroup/*/cfs-runtime 2>/dev/null)
cleanup_between() {
	for id in $("$RUNTIME" --root "$state" list -q 2>/dev/null); do
		"$RUNTIME" --root "$state" delete -f "$id" >/dev/null 2>&1
	done
	# Cgroups the suite's fixed cgroupsPaths made (unless they were there).
	for d in /sys/fs/cgroup/*/cgrouptest /sys/fs/cgroup/*/testdir /sys/fs/cgroup/*/cfs-runtime/testdir; do
		[ -d "$d" ] || continue
		case " $had_cgroups " in *" $d "*) continue ;; esac
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
}
cleanup() {
	cleanup_between
	for d in /sys/fs/cgroup/*/cfs-runtime; do
		case " $had_cgroups " in *" $d "*) continue ;; esac
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	findmnt -rn -o TARGET | grep "^$work/" | sort -r | while read -r m; do umount -l "$m"; done
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/rootfs/bin" "$work/rootfs/dev" "$work/rootfs/proc" "$work/rootfs/sys" "$work/rootfs/etc" "$work/run" "$work/tmp"
# A container's root in a user namespace (host uid 100000 and up) must
# traverse to its bundle.
chmod 755 "$work" "$work/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$work/rootfs/bin/$a"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -czf "$work/run/rootfs-amd64.tar.gz" .
cp "$CACHE/runtimetest" "$work/run/"
cat >"$work/runtime" <<EOF
#!/bin/sh
exec "$RUNTIME" --root "$state" "\$@"
EOF
chmod +x "$work/runtime"
mkdir -p "$OUT"

# 3. Run.
declare -A expected
while IFS='|' read -r name why; do
	name=$(echo "$name" | tr -d ' ')
	[ -n "$name" ] && [ "${name#\#}" = "$name" ] && expected[$name]=$why
done <"$REPO/test/oci/expected-failures.txt"

tests=${ONLY:-$(cd "$CACHE/tests" && ls *.t | sed 's/\.t$//')}
total=0 pass=0 unexpected=0 fixed=0
echo "TAP version 13"
echo "1..$(echo $tests | wc -w)"
table=""
for n in $tests; do
	total=$((total + 1))
	start=$(date +%s.%N)
	# TMPDIR: the suite's bundles (os.MkdirTemp), some of which its tests
	# forget to remove, go under $work.
	(cd "$work/run" && TMPDIR="$work/tmp" RUNTIME="$work/runtime" timeout "$TIMEOUT" "$CACHE/tests/$n.t") >"$OUT/$n.txt" 2>&1
	rc=$?
	secs=$(echo "$(date +%s.%N) - $start" | bc)
	oks=$(grep -c '^ok' "$OUT/$n.txt")
	notoks=$(grep -c '^not ok' "$OUT/$n.txt")
	diag=$(grep -c '^  ---' "$OUT/$n.txt")
	if [ $rc = 0 ] && [ "$notoks" = 0 ] && { [ "$oks" -gt 0 ] || [ "$diag" = 0 ]; }; then
		result=pass
		pass=$((pass + 1))
		if [ -n "${expected[$n]:-}" ]; then
			fixed=$((fixed + 1))
			echo "ok $total - $n # expected to fail, passed"
		else
			echo "ok $total - $n"
		fi
	else
		result=FAIL
		if [ -n "${expected[$n]:-}" ]; then
			echo "not ok $total - $n # TODO expected:${expected[$n]}"
		else
			unexpected=$((unexpected + 1))
			echo "not ok $total - $n (exit $rc, $notoks not ok; see $OUT/$n.txt)"
		fi
	fi
	table+=$(printf '| %-32s | %-4s | %4s | %3s | %6.1fs |' "$n" "$result" "$oks" "$notoks" "$secs")$'\n'
	cleanup_between
done
echo
echo "| test file | result | ok | not ok | time |"
echo "|---|---|--:|--:|--:|"
printf '%s' "$table"
echo
echo "$total test files: $unexpected unexpected failures, $fixed expected failures passed (runtime $RUNTIME)"
echo "conformance: $pass passed, $((total - pass)) failed"
leaks=$(ps -eo pid,args | grep -F "$work" | grep -v grep)
# A container without a mount namespace mounts in ours (under its bundle),
# and delete must have undone it.
mounts=$(findmnt -rn -o TARGET | grep "^$work/")
if [ -n "$leaks$mounts" ]; then
	echo "conformance: left behind:" >&2
	echo "$leaks$mounts" >&2
	echo "$mounts" | sort -r | xargs -r -n1 umount -l
	exit 1
fi
[ "$unexpected" = 0 ] || exit 1
[ -n "${ONLY:-}" ] || [ "$pass" -ge "$MIN_PASS" ] || exit 1
exit 0
