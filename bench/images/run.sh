#!/usr/bin/env bash
# Image benchmarks: unpacking a gzip layer against `tar -xzf` of the same
# file (the Go benchmark alternates the two, as the machine is noisy), and
# the throughput of `cfs import`, `cfs pull` from a loopback docker-registry
# and a pull whose layers are all stored (manifest only).
#
# The layer is a tar.gz of $GOROOT (about 250 MB, 17k files, like a large
# base layer) unless LAYER names one. Needs root, bin/cfs (make build), go,
# tar; the pull part also docker-registry (scripts/setup.sh docker-registry),
# and is skipped without it. Knobs: RUNS (3), LAYER, BENCH_DIR (where layers
# are unpacked: /var/tmp, the disk the store uses).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${RUNS:-3}
die() { echo "bench/images: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (ownership, whiteouts)"
[ -x bin/cfs ] || die "bin/cfs missing: run make build"
cfs=$PWD/bin/cfs
work=$(mktemp -d "${BENCH_DIR:-/var/tmp}/cfs-bench-images.XXXXXX")
reg_pid=
cleanup() {
	set +e
	[ -n "$reg_pid" ] && kill "$reg_pid" 2>/dev/null && wait "$reg_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

layer=${LAYER:-}
if [ -z "$layer" ]; then
	goroot=$(go env GOROOT)
	layer=$work/layer.tar.gz
	tar -C "$(dirname "$goroot")" -cf - "$(basename "$goroot")" | gzip -6 >"$layer"
fi
gz_mb=$(($(stat -c %s "$layer") / 1000000))
tar_mb=$(($(gzip -dc "$layer" | wc -c) / 1000000))
files=$(tar -tzf "$layer" | wc -l)
echo "layer: $layer (${gz_mb} MB gzip, ${tar_mb} MB tar, $files entries)"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
rate() { awk -v mb="$1" -v s="$2" 'BEGIN { printf "%.1f", mb / s }'; }
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo
echo "## unpack vs tar -xzf (alternating, $RUNS rounds, into $(dirname "$work"))"
CFS_BENCH_LAYER=$layer CFS_BENCH_DIR=$work go test -run XXX -bench UnpackVsTarXzf \
	-benchtime "${RUNS}x" ./internal/image/ | grep -E '^Benchmark' | tee "$work/unpack.txt"
speedup=$(awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "speedup") print $i }' "$work/unpack.txt")

echo
echo "## cfs import (decompress, unpack, keep the blob, two digests, syncfs)"
times=()
for i in $(seq "$RUNS"); do
	export CFS_ROOT=$work/import-$i
	sync
	t0=$(now)
	"$cfs" import "$layer" bench:1 >/dev/null
	t1=$(now)
	times+=("$(elapsed "$t0" "$t1")")
	rm -rf "$CFS_ROOT"
done
import_s=$(printf '%s\n' "${times[@]}" | median)
echo "median ${import_s}s: $(rate "$gz_mb" "$import_s") MB/s gzip in, $(rate "$tar_mb" "$import_s") MB/s unpacked"

pull_line="(skipped: docker-registry not installed; scripts/setup.sh docker-registry)"
if command -v docker-registry >/dev/null; then
	echo
	echo "## cfs pull from docker-registry on 127.0.0.1"
	# A port nothing listens on.
	port=$((40000 + RANDOM % 20000))
	while (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do port=$((40000 + RANDOM % 20000)); done
	mkdir -p "$work/registry"
	cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: 127.0.0.1:$port
EOF
	docker-registry serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
	reg_pid=$!
	for _ in $(seq 100); do
		(echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.05
	done
	ref=127.0.0.1:$port/bench/layer:1
	# An OCI archive with the gzip layer as it is (import would store the
	# tar), loaded and pushed: the pull then downloads gzip.
	oci=$work/oci
	mkdir -p "$oci/blobs/sha256"
	layer_d=$(sha256sum <"$layer" | cut -d' ' -f1)
	diff_d=$(gzip -dc "$layer" | sha256sum | cut -d' ' -f1)
	cp "$layer" "$oci/blobs/sha256/$layer_d"
	printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$diff_d" >"$work/config.json"
	cfg_d=$(sha256sum <"$work/config.json" | cut -d' ' -f1)
	mv "$work/config.json" "$oci/blobs/sha256/$cfg_d"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
		"$cfg_d" "$(stat -c %s "$oci/blobs/sha256/$cfg_d")" "$layer_d" "$(stat -c %s "$layer")" >"$work/manifest.json"
	man_d=$(sha256sum <"$work/manifest.json" | cut -d' ' -f1)
	mv "$work/manifest.json" "$oci/blobs/sha256/$man_d"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d}]}' \
		"$man_d" "$(stat -c %s "$oci/blobs/sha256/$man_d")" >"$oci/index.json"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$oci/oci-layout"
	export CFS_ROOT=$work/push
	"$cfs" load -q -i "$oci" bench:1 >/dev/null
	"$cfs" push -q bench:1 "$ref" >/dev/null
	rm -rf "$oci"
	times=()
	for i in $(seq "$RUNS"); do
		export CFS_ROOT=$work/pull-$i
		sync
		t0=$(now)
		"$cfs" pull -q "$ref" >/dev/null
		t1=$(now)
		times+=("$(elapsed "$t0" "$t1")")
		if [ "$i" = 1 ]; then
			t0=$(now)
			"$cfs" pull -q "$ref" >/dev/null
			t1=$(now)
			again_s=$(elapsed "$t0" "$t1")
		fi
		rm -rf "$CFS_ROOT"
	done
	pull_s=$(printf '%s\n' "${times[@]}" | median)
	echo "median ${pull_s}s: $(rate "$gz_mb" "$pull_s") MB/s downloaded, $(rate "$tar_mb" "$pull_s") MB/s unpacked"
	echo "pull again (layers stored: manifest only): ${again_s}s"
	pull_line="pull: ${pull_s}s ($(rate "$gz_mb" "$pull_s") MB/s gzip); again with layers stored: ${again_s}s"
fi

echo
echo "summary: unpack speedup over tar -xzf ${speedup}x; import ${import_s}s ($(rate "$gz_mb" "$import_s") MB/s gzip); $pull_line"
