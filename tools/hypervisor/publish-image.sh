#!/usr/bin/env bash
# Put the guest base image where libvirt's QEMU can read it, idempotently.
#
#   tools/hypervisor/publish-image.sh [IMAGE_DIR]     (default: <repo>/.image)
#
# QEMU under qemu:///system runs as libvirt-qemu, which cannot enter /root (mode 700),
# where the image cache lives by default: a domain whose disk is backed by
# ~/.cache/ringzero/image/<key>/base.qcow2 fails with "Cannot access backing file ...
# Permission denied". The base image itself needs no copy: ringzero's BaseImage uploads it
# into the pool through libvirt (the provider reads it as root). Direct kernel boot does
# need the kernel where QEMU can read it. This copies (once per image key):
#   vmlinuz, initrd.img     -> /var/lib/libvirt/boot/ringzero-<key>/
# points the stable link /var/lib/libvirt/boot/ringzero at it (what Pulumi.local.yaml
# names), and prints one JSON object: key, kernel, initrd, cmdline.
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
boot_dir=/var/lib/libvirt/boot/ringzero-$key

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
ln -sfn "ringzero-$key" "/var/lib/libvirt/boot/ringzero.tmp.$$"
mv -T "/var/lib/libvirt/boot/ringzero.tmp.$$" /var/lib/libvirt/boot/ringzero
KEY=$key BOOT=/var/lib/libvirt/boot/ringzero CMDLINE=$cmdline python3 -c '
import json, os
e = os.environ
print(json.dumps({"key": e["KEY"], "kernel": e["BOOT"] + "/vmlinuz", "initrd": e["BOOT"] + "/initrd.img",
                  "cmdline": e["CMDLINE"]}))'
