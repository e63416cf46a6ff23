#!/bin/bash
# setup.sh prepares everything test/v2vm/run needs to boot a throw-away qemu VM
# whose /sys/fs/cgroup is a pure cgroup v2 hierarchy:
#
#   - apt packages qemu-system-x86, busybox-static, xz-utils, zstd (only when missing);
#   - a stock Debian kernel, fetched with `apt-get download` and unpacked with
#     `dpkg -x` (never installed: the host's kernel and cgroup setup stay untouched);
#   - $V2VM_WORK/out/vmlinux: the uncompressed ELF, which qemu boots via PVH
#     (decompressing a bzImage under TCG costs 3-4 s per boot);
#   - $V2VM_WORK/out/base.cpio: busybox, /init and the kernel modules a container
#     engine needs, with their dependencies.
#
# Idempotent; when nothing changed it only checks its cache stamps (well under a second).
# Environment:
#   V2VM_WORK         cache directory (default /var/tmp/cfs-v2vm)
#   V2VM_KERNEL_PKG   kernel package to use, e.g. linux-image-6.1.0-56-amd64
#                     (default: what linux-image-amd64 depends on, else the newest
#                     linux-image-N-amd64 apt knows); a different value re-fetches
#   V2VM_MODULES      extra kernel modules for the base image (space separated)
set -euo pipefail

SRC=$(cd "$(dirname "$(readlink -f "$0")")" && pwd)
W=${V2VM_WORK:-/var/tmp/cfs-v2vm}
mkdir -p "$W/debs" "$W/out"
exec 9> "$W/.setup.lock"
flock 9   # parallel makes share the cache

# Modules packed into the base image (dependencies are added automatically).
# crc32c_generic is listed because busybox depmod drops softdeps, and libcrc32c
# (needed by nf_tables, nf_conntrack) soft-depends on a crc32c implementation.
MODULES="crc32c_generic overlay veth bridge br_netfilter loop tun dummy macvlan ipvlan vxlan
  nf_tables nft_chain_nat nft_ct nft_nat nft_masq nft_reject_inet nft_fib_inet nft_compat
  nf_conntrack_netlink iptable_nat iptable_filter iptable_mangle ip6table_filter ip6table_nat
  xt_conntrack xt_MASQUERADE xt_addrtype xt_mark xt_comment xfrm_user sch_fq_codel
  ${V2VM_MODULES:-}"

log() { echo "v2vm-setup: $* ($(elapsed))" >&2; }
t0=$(date +%s%N)
elapsed() { local ms=$((($(date +%s%N) - t0) / 1000000)); printf '%d.%02ds' $((ms / 1000)) $((ms % 1000 / 10)); }

# ---- host packages ----------------------------------------------------------
need_pkgs() {
	local p absent=()
	for p in qemu-system-x86 busybox-static xz-utils zstd; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || absent+=("$p")
	done
	echo "${absent[@]}"
}
apt_get() { apt-get -o DPkg::Lock::Timeout=600 -q "$@"; }
missing=$(need_pkgs)
if [ -n "$missing" ]; then
	log "installing $missing"
	# apt-get update only when the lists do not know the packages yet.
	# shellcheck disable=SC2086
	if ! apt_get install -y --no-install-recommends $missing; then
		apt_get update
		apt_get install -y --no-install-recommends $missing
	fi
fi

# ---- kernel -------------------------------------------------------------------
pick_kernel() {
	local k
	k=$(apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -1)
	[ -n "$k" ] || k=$(apt-cache pkgnames linux-image- 2>/dev/null |
		grep -E '^linux-image-[0-9][0-9.]*-[0-9]+-amd64$' | sort -V | tail -1)
	echo "$k"
}
KROOT=$W/kernel
KPKG=${V2VM_KERNEL_PKG:-}
if [ -f "$KROOT/.pkg" ] && { [ -z "$KPKG" ] || [ "$KPKG" = "$(cat "$KROOT/.pkg")" ]; }; then
	KPKG=$(cat "$KROOT/.pkg")   # cached: no apt look-up at all
else
	[ -n "$KPKG" ] || KPKG=$(pick_kernel)
	if [ -z "$KPKG" ]; then
		apt_get update
		KPKG=$(pick_kernel)
	fi
	[ -n "$KPKG" ] || { log "no linux-image-*-amd64 package known to apt"; exit 1; }
	deb=$(ls "$W/debs/${KPKG}_"*.deb 2>/dev/null | tail -1 || true)
	if [ -z "$deb" ]; then
		log "downloading $KPKG"
		dl=$(mktemp -d "$W/.dl.XXXXXX")
		# apt downloads as the _apt user when that user can write the directory.
		chown _apt "$dl" 2> /dev/null || chmod 777 "$dl"
		if ! (cd "$dl" && apt_get download "$KPKG"); then
			apt_get update
			(cd "$dl" && apt_get download "$KPKG")
		fi
		find "$W/debs" -name 'linux-image-*.deb' -delete   # keep one kernel, 70 MB
		mv "$dl"/*.deb "$W/debs/"
		rm -rf "$dl"
		deb=$(ls "$W/debs/${KPKG}_"*.deb | tail -1)
	fi
	log "unpacking $(basename "$deb")"
	rm -rf "$KROOT.tmp" "$KROOT"
	mkdir -p "$KROOT.tmp"
	dpkg -x "$deb" "$KROOT.tmp"
	echo "$KPKG" > "$KROOT.tmp/.pkg"
	mv "$KROOT.tmp" "$KROOT"
	rm -f "$W/out/vmlinux"
fi
KV=$(ls "$KROOT/lib/modules")
MD=$KROOT/lib/modules/$KV

# ---- vmlinux: the same idea as the kernel's scripts/extract-vmlinux -------------
# vmlinuz is a boot stub followed by the compressed kernel ELF: find each
# compression magic, decompress from there and keep the first result that is ELF.
is_elf() { [ "$(head -c4 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; }
extract_vmlinux() {   # $1 = vmlinuz, $2 = output
	local img=$1 out=$2 magic cmd off
	while read -r magic cmd; do
		for off in $(LC_ALL=C grep -obUaP "$magic" "$img" | cut -d: -f1); do
			tail -c +$((off + 1)) "$img" | $cmd > "$out" 2>/dev/null || true
			is_elf "$out" && return 0
		done
	done <<-'EOF'
		\xfd\x37\x7a\x58\x5a\x00 xz -dc --single-stream
		\x28\xb5\x2f\xfd zstd -dcq
		\x1f\x8b\x08 gzip -dc
		\x5d\x00\x00\x00 lzma -dc
	EOF
	rm -f "$out"
	return 1
}
if [ ! -s "$W/out/vmlinux" ]; then
	log "extracting vmlinux from vmlinuz-$KV"
	extract_vmlinux "$KROOT/boot/vmlinuz-$KV" "$W/out/vmlinux.tmp" ||
		{ log "no ELF kernel found inside vmlinuz-$KV"; exit 1; }
	mv "$W/out/vmlinux.tmp" "$W/out/vmlinux"
fi

# ---- base initramfs -------------------------------------------------------------
# Rebuilt when any input changes: /init, this script (module list), the kernel, busybox.
key=$( { cat "$SRC/init" "$SRC/setup.sh"; echo "$KPKG $MODULES"; sha256sum /bin/busybox; } | sha256sum | cut -c1-16)
if [ -s "$W/out/base.cpio" ] && [ "$(cat "$W/out/base.key" 2>/dev/null)" = "$key" ]; then
	log "cached: $KPKG, $(du -h "$W/out/base.cpio" | cut -f1) base image"
	exit 0
fi

# Resolve module dependencies from each module's .modinfo ("depends=a,b"), which
# needs no depmod over the 4000 modules of the package (10 s). Newer kernels ship
# .ko.xz/.ko.zst; only the packed ones get decompressed (busybox modprobe wants .ko).
modcat() {
	case $1 in
	*.xz) xz -dc "$1" ;;
	*.zst) zstd -dcq "$1" ;;
	*) cat "$1" ;;
	esac
}
modname() { name=${1##*/}; name=${name%%.ko*}; name=${name//-/_}; }   # sets $name, no fork
declare -A kpath=() builtin=() seen=()
while read -r p; do modname "$p"; kpath[$name]=$p; done < <(cd "$MD" && find kernel -name '*.ko*')
while read -r p; do modname "$p"; builtin[$name]=1; done < "$MD/modules.builtin"
order=()
add_module() {   # $1 = module name
	local n=${1//-/_} p d
	[ -n "${seen[$n]:-}" ] && return 0
	seen[$n]=1
	[ -n "${builtin[$n]:-}" ] && return 0
	p=${kpath[$n]:-}
	[ -n "$p" ] || { log "module $1: not found in $KPKG"; exit 1; }
	for d in $(modcat "$MD/$p" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr , ' '); do
		add_module "$d"
	done
	order+=("$p")
}
for m in $MODULES; do add_module "$m"; done

stage=$(mktemp -d "$W/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"   # the "." entry of the archive becomes the mode of the guest's /
mkdir -p "$stage"/{bin,sbin,dev,proc,sys,tmp,run,mnt,root,etc,payload,newroot,var/tmp} "$stage/lib/modules/$KV"
cp /bin/busybox "$stage/bin/busybox"
for a in $(busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$stage/bin/$a"
done
ln -s ../bin/busybox "$stage/sbin/modprobe"   # the kernel's request_module() runs /sbin/modprobe
install -m 0755 "$SRC/init" "$stage/init"
echo 'root:x:0:0:root:/root:/bin/sh' > "$stage/etc/passwd"
echo 'root:x:0:' > "$stage/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$stage/etc/hosts"
for p in "${order[@]}"; do
	mkdir -p "$stage/lib/modules/$KV/$(dirname "$p")"
	modcat "$MD/$p" > "$stage/lib/modules/$KV/${p%.ko*}.ko"
done
cp "$MD/modules.builtin" "$MD/modules.order" "$stage/lib/modules/$KV/"
# modules.dep/alias for just the packed modules, so busybox modprobe and kernel
# autoloading (mount -t overlay, ip link add type veth, nft) work in the guest.
busybox depmod -b "$stage" "$KV"

out=$W/out/base.cpio
# Uncompressed: the kernel unpacks it faster than it inflates gzip under TCG,
# and the payload cpio can be appended without any padding games.
(cd "$stage" && find . | LC_ALL=C sort | busybox cpio -o -H newc 2>/dev/null) > "$out.tmp"
mv "$out.tmp" "$out"
echo "$key" > "$W/out/base.key"
log "built $out: ${#order[@]} modules, $(du -h "$out" | cut -f1)"
