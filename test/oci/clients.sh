#!/usr/bin/env bash
# Real clients drive cfs-runtime: containerd (ctr, with --runc-binary),
# containerd's CRI plugin (crictl, runtime handler "cfs" whose BinaryName is
# cfs-runtime: the path a Kubernetes RuntimeClass takes) and Podman
# (--runtime). Everything is private: containerd runs on its own socket,
# root and state under a scratch directory and is stopped by PID; Podman
# gets its own --root/--runroot; images come from test/oci/mkimage.sh (no
# registry); pods use the host network (no CNI, no bridge on the host).
#
# Needs root, containerd and podman (Debian: containerd, podman), go (to
# build crictl from sigs.k8s.io/cri-tools once, cached in $CACHE).
# Prints TAP and "clients: N passed, N failed". Knobs: RUNTIME, SKIP
# (space-separated: ctr cri podman).
set -uo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
RUNTIME=${RUNTIME:-$REPO/bin/cfs-runtime}
CACHE=${CACHE:-/var/tmp/cfs-oci-clients}
CRICTL_VERSION=${CRICTL_VERSION:-v1.34.0}
SKIP=${SKIP:-}

die() { echo "clients: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root"
RUNTIME=$(readlink -f "$(command -v "$RUNTIME")") || die "runtime not found (make build)"
for t in containerd ctr containerd-shim-runc-v2 podman conmon go; do
	command -v $t >/dev/null || die "$t not found (apt-get install containerd podman)"
done

W=$(mktemp -d /tmp/cfs-clients.XXXXXX)
# containerd 1.6 puts shim sockets in /run/containerd/s whatever its
# config says: remove the directory at the end if we made it.
had_run_containerd=no
[ -e /run/containerd ] && had_run_containerd=yes
# Cgroup parents the clients make (ctr: /default, Podman: /libpod_parent,
# our default /cfs-runtime): removed at the end if they are new and empty.
parents="default libpod_parent cfs-runtime"
had_parents=$(for p in $parents; do ls -d /sys/fs/cgroup/*/"$p" 2>/dev/null; done)
# The runtime must be called cfs-runtime (the binary dispatches on argv[0]).
mkdir -p "$W/bin"
ln -s "$RUNTIME" "$W/bin/cfs-runtime"
RT=$W/bin/cfs-runtime
CPID=
n=0 pass=0 fail=0
ok() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		pass=$((pass + 1))
		echo "ok $n - $2"
	else
		fail=$((fail + 1))
		echo "not ok $n - $2"
		[ -z "${3:-}" ] || echo "$3" | sed 's/^/# /'
	fi
}
check() { # name expected-substring command...
	local name=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	rc=$?
	if [ $rc = 0 ] && [[ $out == *"$want"* ]]; then ok 0 "$name"; else ok 1 "$name" "exit $rc: $out"; fi
}

cleanup() {
	set +e
	if [ -n "$CPID" ]; then
		ctr -a "$W/containerd.sock" -n default tasks ls -q 2>/dev/null | while read -r t; do
			ctr -a "$W/containerd.sock" -n default tasks kill -s KILL "$t" 2>/dev/null
		done
		[ -x "$W/crictl" ] && {
			"$W/crictl" -r "unix://$W/containerd.sock" rmp -fa >/dev/null 2>&1
		}
		kill -TERM "$CPID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$CPID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$CPID" 2>/dev/null
	fi
	# Shims and containers left by a crashed containerd (by their paths).
	for p in $(pgrep -f "containerd-shim-runc-v2 .*-address $W/"); do kill -KILL "$p"; done
	for root in "$W"/runc "$W"/cri-runc "$W"/podman-rt; do
		for r in "$root"/*/ "$root"; do
			[ -d "$r" ] || continue
			for id in $("$RT" --root "$r" list -q 2>/dev/null); do "$RT" --root "$r" delete -f "$id" >/dev/null 2>&1; done
		done
	done
	if [ -d "$W/podman" ]; then
		podman_ rm -af -t 0 >/dev/null 2>&1
		podman_ system reset -f >/dev/null 2>&1
	fi
	findmnt -rn -o TARGET | grep "^$W/" | sort -r | while read -r m; do umount -l "$m"; done
	for d in /sys/fs/cgroup/*/cfs-clients-*; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done
	for p in $parents; do
		for d in /sys/fs/cgroup/*/"$p"; do
			[ -d "$d" ] || continue
			case " $had_parents " in *"$d"*) continue ;; esac
			find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
		done
	done
	rm -rf "$W"
	[ "$had_run_containerd" = yes ] || rm -rf /run/containerd
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "TAP version 13"
"$REPO/test/oci/mkimage.sh" "$W/busybox.tar" docker.io/library/cfsbusybox:latest || die "mkimage failed"
"$REPO/test/oci/mkimage.sh" "$W/pause.tar" docker.io/library/cfspause:latest '["sleep","infinity"]' || die "mkimage failed"

# --- containerd ---------------------------------------------------------
if [[ " $SKIP " != *" ctr "* || " $SKIP " != *" cri "* ]]; then
	mkdir -p "$W/cni"
	cat >"$W/containerd.toml" <<EOF
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
[grpc]
  address = "$W/containerd.sock"
[ttrpc]
  address = "$W/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "docker.io/library/cfspause:latest"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "cfs"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.cfs]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.cfs.options]
        BinaryName = "$RT"
        Root = "$W/cri-runc"
EOF
	containerd --config "$W/containerd.toml" >"$W/containerd.log" 2>&1 &
	CPID=$!
	for _ in $(seq 100); do ctr -a "$W/containerd.sock" version >/dev/null 2>&1 && break; sleep 0.1; done
	C="ctr -a $W/containerd.sock"
	$C -n default images import "$W/busybox.tar" >/dev/null && $C -n k8s.io images import "$W/busybox.tar" >/dev/null &&
		$C -n k8s.io images import "$W/pause.tar" >/dev/null || die "containerd did not start or import failed: $(tail -5 "$W/containerd.log")"
fi

if [[ " $SKIP " != *" ctr "* ]]; then
	R="--runc-binary $RT --runc-root $W/runc --fifo-dir $W/fifo"
	IMG=docker.io/library/cfsbusybox:latest
	check "ctr run: output and exit status" "hello from ctr" \
		sh -c "$C run --rm $R $IMG c1 sh -c 'echo hello from ctr; exit 0'"
	out=$($C run --rm $R $IMG c2 sh -c 'exit 7' 2>&1); rc=$?
	ok $([ $rc = 7 ] && echo 0 || echo 1) "ctr run: exit status 7 passes through" "rc=$rc $out"
	check "ctr run -d" "" $C run -d $R $IMG c3 sleep 300
	check "ctr task ls: running" "RUNNING" sh -c "$C task ls | grep c3"
	check "ctr task exec" "exec ok" $C task exec --exec-id e1 c3 sh -c 'echo exec ok'
	out=$($C task exec --exec-id e2 c3 sh -c 'exit 5' 2>&1); rc=$?
	ok $([ $rc = 5 ] && echo 0 || echo 1) "ctr task exec: exit status" "rc=$rc $out"
	check "ctr task ps" "PID" $C task ps c3
	check "ctr task pause" "" $C task pause c3
	check "ctr task ls: paused" "PAUSED" sh -c "$C task ls | grep c3"
	check "ctr task resume" "" $C task resume c3
	check "ctr task kill TERM" "" $C task kill -s TERM c3
	for _ in $(seq 50); do $C task ls | grep c3 | grep -q STOPPED && break; sleep 0.1; done
	check "ctr task stopped" "STOPPED" sh -c "$C task ls | grep c3"
	check "ctr task rm" "" $C task rm c3
	check "ctr container rm" "" $C container rm c3
	check "ctr run -t (console socket)" "tty-ok" \
		timeout 30 script -qec "$C run --rm -t $R $IMG c4 sh -c 'tty; echo tty-ok'" /dev/null
	left=$("$RT" --root "$W/runc/default" list -q 2>/dev/null)
	ok $([ -z "$left" ] && echo 0 || echo 1) "ctr: no container state left" "$left"
fi

# --- CRI: a pod sandbox and a container, runtime handler "cfs" ----------
if [[ " $SKIP " != *" cri "* ]]; then
	mkdir -p "$CACHE"
	if [ ! -x "$CACHE/crictl-$CRICTL_VERSION" ]; then
		echo "# building crictl $CRICTL_VERSION" >&2
		(cd "$CACHE" && GOBIN="$CACHE/gobin" GOFLAGS=-mod=mod CGO_ENABLED=0 \
			go install "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" >&2 &&
			mv "$CACHE/gobin/crictl" "$CACHE/crictl-$CRICTL_VERSION") || die "building crictl failed"
	fi
	ln -sf "$CACHE/crictl-$CRICTL_VERSION" "$W/crictl"
	: >"$W/crictl.yaml"
	CR="$W/crictl --runtime-endpoint unix://$W/containerd.sock --image-endpoint unix://$W/containerd.sock --timeout 30s --config $W/crictl.yaml"
	mkdir -p "$W/logs"
	cat >"$W/pod.json" <<EOF
{"metadata":{"name":"cfs-pod","namespace":"default","uid":"cfs-pod-uid","attempt":1},
 "log_directory":"$W/logs",
 "linux":{"cgroup_parent":"/cfs-clients-$$","security_context":{"namespace_options":{"network":2}}}}
EOF
	cat >"$W/ctr.json" <<EOF
{"metadata":{"name":"app"},"image":{"image":"docker.io/library/cfsbusybox:latest"},
 "command":["sh","-c","echo hello from cri; hostname; sleep 300"],"log_path":"app.log","linux":{}}
EOF
	pod=$($CR runp --runtime cfs "$W/pod.json" 2>&1); rc=$?
	ok $rc "crictl runp --runtime cfs (pod sandbox)" "$pod"
	if [ $rc = 0 ]; then
		check "crictl pods: ready" "Ready" $CR pods --id "$pod"
		ctrid=$($CR create "$pod" "$W/ctr.json" "$W/pod.json" 2>&1); rc=$?
		ok $rc "crictl create" "$ctrid"
		check "crictl start" "" $CR start "$ctrid"
		for _ in $(seq 50); do grep -q "hello from cri" "$W/logs/app.log" 2>/dev/null && break; sleep 0.1; done
		check "crictl logs: output" "hello from cri" $CR logs "$ctrid"
		check "crictl exec" "exec in pod" $CR exec "$ctrid" sh -c 'echo exec in pod'
		check "crictl exec -s (sync)" "sync" $CR exec -s "$ctrid" echo sync
		check "crictl ps: running" "Running" $CR ps --id "$ctrid"
		check "crictl stop" "" $CR stop -t 2 "$ctrid"
		check "crictl rm" "" $CR rm "$ctrid"
		check "crictl stopp" "" $CR stopp "$pod"
		check "crictl rmp" "" $CR rmp "$pod"
		left=$(ls "$W/cri-runc/k8s.io" 2>/dev/null)
		ok $([ -z "$left" ] && echo 0 || echo 1) "cri: no container state left" "$left"
	fi
fi

# --- Podman --------------------------------------------------------------
podman_() {
	podman --root "$W/podman/storage" --runroot "$W/podman/run" --tmpdir "$W/podman/tmp" \
		--runtime "$RT" --cgroup-manager cgroupfs --events-backend file --storage-driver vfs "$@"
}
if [[ " $SKIP " != *" podman "* ]]; then
	mkdir -p "$W/podman"
	podman_ load -i "$W/busybox.tar" >/dev/null 2>&1 || die "podman load failed"
	# Podman's default rlimits (1048576 files and processes) are above this
	# host's hard limits, and raising them needs CAP_SYS_RESOURCE, which
	# the development VM lacks (crun and runc fail the same way).
	U="--network none --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
	IMG=docker.io/library/cfsbusybox:latest
	check "podman run" "hello from podman" podman_ run --rm $U $IMG sh -c 'echo hello from podman'
	out=$(podman_ run --rm $U $IMG sh -c 'exit 9' 2>&1); rc=$?
	ok $([ $rc = 9 ] && echo 0 || echo 1) "podman run: exit status 9 passes through" "rc=$rc $out"
	check "podman run -d" "" podman_ run -d --name p1 $U $IMG sleep 300
	check "podman exec" "exec ok" podman_ exec p1 sh -c 'echo exec ok'
	out=$(podman_ exec p1 sh -c 'exit 6' 2>&1); rc=$?
	ok $([ $rc = 6 ] && echo 0 || echo 1) "podman exec: exit status" "rc=$rc $out"
	check "podman exec -d" "" podman_ exec -d p1 sleep 100
	check "podman exec -t" "tty-ok" timeout 30 script -qec "podman --root $W/podman/storage --runroot $W/podman/run --tmpdir $W/podman/tmp --runtime $RT --cgroup-manager cgroupfs --events-backend file --storage-driver vfs exec -t p1 sh -c 'tty; echo tty-ok'" /dev/null
	check "podman top" "sleep 300" podman_ top p1
	check "podman pause" "" podman_ pause p1
	check "podman inspect: paused" "paused" podman_ inspect -f '{{.State.Status}}' p1
	check "podman unpause" "" podman_ unpause p1
	check "podman stop" "" podman_ stop -t 5 p1
	check "podman rm" "" podman_ rm p1
	check "podman run -t" "tty-ok" timeout 30 script -qec "podman --root $W/podman/storage --runroot $W/podman/run --tmpdir $W/podman/tmp --runtime $RT --cgroup-manager cgroupfs --events-backend file --storage-driver vfs run --rm -t $U $IMG sh -c 'tty; echo tty-ok'" /dev/null
fi

echo "1..$n"
echo "clients: $pass passed, $fail failed"
[ "$fail" = 0 ]
