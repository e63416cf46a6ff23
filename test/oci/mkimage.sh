#!/usr/bin/env bash
# mkimage.sh OUT.tar NAME [CMD-JSON]: writes an OCI image archive (oci-layout,
# index.json, blobs) of a busybox root filesystem made from the host's
# busybox-static, named NAME (containerd's io.containerd.image.name and
# org.opencontainers.image.ref.name annotations), for `ctr images import`,
# `podman load` and the CRI tests. No registry involved.
set -euo pipefail
out=$1
name=$2
cmd=${3:-'["sh"]'}
[ -x /bin/busybox ] || { echo "mkimage: needs busybox-static" >&2; exit 1; }
d=$(mktemp -d /tmp/cfs-mkimage.XXXXXX)
trap 'rm -rf "$d"' EXIT
mkdir -p "$d/rootfs/bin" "$d/rootfs/etc" "$d/rootfs/tmp" "$d/rootfs/proc" "$d/rootfs/sys" "$d/rootfs/dev" "$d/blobs/sha256"
cp /bin/busybox "$d/rootfs/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$d/rootfs/bin/$a"
done
chmod 1777 "$d/rootfs/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$d/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$d/rootfs/etc/group"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$d/rootfs" -cf "$d/layer.tar" .
diffid=$(sha256sum "$d/layer.tar" | cut -d' ' -f1)
gzip -n -c "$d/layer.tar" >"$d/layer.tar.gz"
blob() { # file -> prints "sha256 size", moves it into blobs/
	local h s
	h=$(sha256sum "$1" | cut -d' ' -f1)
	s=$(stat -c %s "$1")
	mv "$1" "$d/blobs/sha256/$h"
	echo "$h $s"
}
read -r lh ls < <(blob "$d/layer.tar.gz")
cat >"$d/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":$cmd,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$diffid"]},"history":[{"created_by":"test/oci/mkimage.sh"}]}
EOF
read -r ch cs < <(blob "$d/config.json")
cat >"$d/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$ch","size":$cs},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$lh","size":$ls}]}
EOF
read -r mh ms < <(blob "$d/manifest.json")
cat >"$d/index.json" <<EOF
{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$mh","size":$ms,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"$name","org.opencontainers.image.ref.name":"${name##*:}"}}]}
EOF
echo '{"imageLayoutVersion":"1.0.0"}' >"$d/oci-layout"
tar -C "$d" -cf "$out" oci-layout index.json blobs
