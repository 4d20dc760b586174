#!/usr/bin/env bash
# Put the guest base image where libvirt's QEMU can read it, idempotently.
#
#   tools/hypervisor/publish-image.sh [IMAGE_DIR]     (default: <repo>/.image)
#
# QEMU under qemu:///system runs as libvirt-qemu, which cannot enter /root (mode 700),
# where the image cache lives by default: a domain whose disk is backed by
# ~/.cache/ringzero/image/<key>/base.qcow2 fails with "Cannot access backing file ...
# Permission denied". This copies (once per image key):
#   base.qcow2              -> /var/lib/libvirt/images/ringzero-base-<key>.qcow2
#                              (volume "ringzero-base-<key>.qcow2" of pool "default")
#   vmlinuz, initrd.img     -> /var/lib/libvirt/boot/ringzero-<key>/
# and prints one JSON object: key, pool, volume, base, kernel, initrd, cmdline.
# Never write the published base: boot qcow2 overlays backed by it.
# Needs tools/hypervisor/start.sh to have run (pool "default").
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
img=${1:-$here/../../.image}
URI=qemu:///system
log() { printf '[publish %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -d "$img" ] || die "no image at $img (run tools/image/build.sh)"
img=$(cd "$img" && pwd -P)
for f in base.qcow2 vmlinuz initrd.img manifest.json; do
  [ -s "$img/$f" ] || die "missing $img/$f (run tools/image/build.sh)"
done
read -r key cmdline < <(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["key"], m["kernel_cmdline"])' "$img/manifest.json")
pool_dir=$(virsh -c "$URI" pool-dumpxml default 2>/dev/null | sed -n 's:.*<path>\(.*\)</path>.*:\1:p' | head -n1)
[ -n "$pool_dir" ] || die "pool default not found on $URI: run tools/hypervisor/start.sh"
boot_dir=/var/lib/libvirt/boot/ringzero-$key
vol=ringzero-base-$key.qcow2

publish() {   # src dst
  local src=$1 dst=$2
  if [ -f "$dst" ] && [ "$(stat -c %s "$dst")" = "$(stat -c %s "$src")" ]; then return 0; fi
  cp "$src" "$dst.tmp.$$"
  chmod 0644 "$dst.tmp.$$"
  mv "$dst.tmp.$$" "$dst"
  log "published $dst"
}
mkdir -p "$boot_dir"
chmod 0755 "$boot_dir"
publish "$img/vmlinuz" "$boot_dir/vmlinuz"
publish "$img/initrd.img" "$boot_dir/initrd.img"
publish "$img/base.qcow2" "$pool_dir/$vol"
virsh -q -c "$URI" pool-refresh default >/dev/null

KEY=$key POOL_DIR=$pool_dir VOL=$vol BOOT=$boot_dir CMDLINE=$cmdline python3 -c '
import json, os
e = os.environ
print(json.dumps({"key": e["KEY"], "pool": "default", "volume": e["VOL"],
                  "base": os.path.join(e["POOL_DIR"], e["VOL"]),
                  "kernel": e["BOOT"] + "/vmlinuz", "initrd": e["BOOT"] + "/initrd.img",
                  "cmdline": e["CMDLINE"]}))'
