#!/usr/bin/env bash
# Build (or reuse) ringzero's guest base image.
#
#   tools/image/build.sh            build if missing, link <repo>/.image, print its path
#   tools/image/build.sh --force    rebuild even if the key directory exists
#   tools/image/build.sh --prune    also delete the cached images of other keys
#
# Output in ${RINGZERO_CACHE:-$HOME/.cache/ringzero}/image/<key>/:
#   base.qcow2      whole-disk ext4 root filesystem (no partition table), never modify it:
#                   boot qcow2 overlays of it
#   vmlinuz         guest kernel   } for direct kernel boot with the command line in
#   initrd.img      its initramfs  } manifest.json ("root=/dev/vda rw console=ttyS0")
#   manifest.json   key, build date, mirror, kernel, sizes, sha256, package list
# <key> is a hash of recipe/ (and of LAYOUT below): edit the recipe and a new image is built.
# Environment:
#   RINGZERO_CACHE                   cache root (default ~/.cache/ringzero)
#   RINGZERO_DEBIAN_MIRROR           Debian mirror (default: the host's APT sources)
#   RINGZERO_DEBIAN_SECURITY_MIRROR  security mirror (default: the host's; "none" to skip)
# Needs root, debootstrap, e2fsprogs (mkfs.ext4 -d), qemu-utils, python3. A cold build
# holds ${RINGZERO_CACHE}/.heavy.lock (shared with other heavy jobs) throughout.
set -euo pipefail

# Everything is in main(), which bash parses whole before running it: editing this file
# while a build runs must not change what the running build executes next.
main() {

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
recipe=$here/recipe
cache=${RINGZERO_CACHE:-$HOME/.cache/ringzero}
force=0 prune=0
case "${1:-}" in
  --force) force=1 ;;
  --prune) prune=1 ;;
  "") ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
  *) echo "usage: $0 [--force|--prune]" >&2; exit 2 ;;
esac

log() { printf '[image %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# --- key: sha256 over the recipe files (path, mode, content) and LAYOUT -----------------
# Bump LAYOUT when this script changes what it produces (steps, file names, formats);
# changes to its messages or checks need no rebuild.
LAYOUT=1
recipe_key() {
  (cd "$here" && printf 'layout=%s\0' "$LAYOUT" && find recipe -type f -o -type l | LC_ALL=C sort |
    while IFS= read -r f; do
      printf '%s\0' "$f"
      if [ -L "$f" ]; then printf 'link:%s' "$(readlink "$f")"; else
        if [ -x "$f" ]; then printf 'exec\0'; fi; cat "$f"; fi
      printf '\0'
    done) | sha256sum | cut -c1-16
}
key=$(recipe_key)
out=$cache/image/$key

link_and_print() {
  ln -sfn "$out" "$repo/.image"
  if [ "$prune" = 1 ]; then
    local d
    for d in "$cache"/image/*/; do
      d=${d%/}
      [ "$d" = "$out" ] || [ ! -f "$d/manifest.json" ] && continue
      log "pruning image $(basename "$d")"; rm -rf --one-file-system "$d"
    done
  fi
  log "image $key ready: $out (linked as $repo/.image)"
  printf '%s\n' "$out"
}

complete() { [ -s "$1/base.qcow2" ] && [ -s "$1/vmlinuz" ] && [ -s "$1/initrd.img" ] && [ -s "$1/manifest.json" ]; }

if [ "$force" = 0 ] && complete "$out"; then link_and_print; exit 0; fi

[ "$(id -u)" = 0 ] || die "a cold build needs root (debootstrap, chroot)"
for t in debootstrap mkfs.ext4 qemu-img python3 flock chroot; do
  command -v "$t" >/dev/null || die "missing $t (see tools/host/packages.txt)"
done
# shellcheck source=/dev/null
. "$recipe/image.env"

# --- mirrors: from the host's APT sources (deb822 *.sources and one-line *.list) --------
# Prints the first URI whose suites include exactly $1.
host_mirror() {
  local suite=$1 f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    case "$f" in
      *.sources)
        awk -v s="$suite" '
          function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " s " ") && uris != "") { split(uris, u, " "); print u[1]; found=1; exit } types=""; suites=""; uris="" }
          /^[ \t]*#/ { next }
          /^[ \t]*$/ { flush(); next }
          /^Types:/  { sub(/^Types:[ \t]*/, "");  types=$0 }
          /^URIs:/   { sub(/^URIs:[ \t]*/, "");   uris=$0 }
          /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites=$0 }
          END { if (!found) flush() }' "$f" ;;
      *)
        awk -v s="$suite" '
          $1 == "deb" { i=2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                        if ($(i+1) == s) { print $i; exit } }' "$f" ;;
    esac
  done | head -n1
}
mirror=${RINGZERO_DEBIAN_MIRROR:-$(host_mirror "$SUITE")}
[ -n "$mirror" ] || die "no Debian mirror for $SUITE in the host's APT sources; set RINGZERO_DEBIAN_MIRROR"
security=${RINGZERO_DEBIAN_SECURITY_MIRROR:-$(host_mirror "$SUITE-security")}
[ "$security" = none ] && security=
updates=$(host_mirror "$SUITE-updates")

# --- cold build, serialized with other heavy jobs ---------------------------------------
mkdir -p "$cache/image"
exec 9>"$cache/.heavy.lock"
if ! flock -n 9; then
  log "waiting for $cache/.heavy.lock (another heavy job is running)"
  flock 9
fi
if [ "$force" = 0 ] && complete "$out"; then   # built by someone else meanwhile
  exec 9>&-; link_and_print; exit 0
fi

# remove a build dir: unmount anything still mounted below it (deepest first), then
# delete it without crossing into other filesystems (a bind-mounted /dev!)
remove_build_dir() {
  local d=$1 m
  awk -v r="$d/" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r |
    while IFS= read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  if awk -v r="$d/" 'index($2, r) == 1 { bad=1 } END { exit !bad }' /proc/mounts; then
    log "NOT removing $d: something is still mounted below it"; return 0
  fi
  rm -rf --one-file-system "$d"
}
# Leftovers of killed builds (we hold the lock: no other build is running).
for d in "$cache"/image/.build-*; do
  [ -d "$d" ] || continue
  log "removing leftover $d"; remove_build_dir "$d"
done

t0=$(date +%s)
tmp=$(mktemp -d "$cache/image/.build-$key.XXXXXX")
root=$tmp/rootfs
# shellcheck disable=SC2329  # used by the EXIT trap
cleanup() { remove_build_dir "$tmp"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "cold build of $key ($SUITE $VARIANT, mirror $mirror${security:+, security $security}) in $tmp"
log "debootstrap (log: $tmp/debootstrap.log)"
if ! debootstrap --variant="$VARIANT" --include="$BOOTSTRAP_INCLUDE" \
      "$SUITE" "$root" "$mirror" >"$tmp/debootstrap.log" 2>&1; then
  tail -n 30 "$tmp/debootstrap.log" >&2
  [ -f "$root/debootstrap/debootstrap.log" ] && tail -n 30 "$root/debootstrap/debootstrap.log" >&2
  die "debootstrap failed"
fi
t_boot=$(date +%s)

# APT sources of the image: the same mirrors as the build.
{
  echo "deb $mirror $SUITE main"
  [ -n "$updates" ] && echo "deb $updates $SUITE-updates main"
  [ -n "$security" ] && echo "deb $security $SUITE-security main"
} >"$root/etc/apt/sources.list"
cp -a "$recipe/rootfs/." "$root/"
cp "$recipe/packages.txt" "$root/tmp/ringzero-packages.txt"
cp "$recipe/customize.sh" "$root/tmp/ringzero-customize.sh"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true   # name lookups during the build only
# No service may start inside the chroot (there is no systemd here; init scripts would
# start sshd on the build host).
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
chmod 755 "$root/usr/sbin/policy-rc.d"
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --bind /dev "$root/dev"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"

log "apt install + customize in chroot (log: $tmp/customize.log)"
if ! chroot "$root" /bin/sh /tmp/ringzero-customize.sh >"$tmp/customize.log" 2>&1; then
  tail -n 40 "$tmp/customize.log" >&2
  die "customize.sh failed"
fi
# shellcheck disable=SC2016
chroot "$root" dpkg-query -W -f '${Package}\t${Version}\n' >"$tmp/packages.tsv"
for m in dev/pts dev sys proc; do umount "$root/$m"; done
if awk -v r="$root/" 'index($2, r) == 1 { bad=1 } END { exit !bad }' /proc/mounts; then
  die "mounts left below $root"
fi
rm -f "$root/usr/sbin/policy-rc.d" "$root/tmp/ringzero-"*
t_cust=$(date +%s)

# Kernel + initrd for direct kernel boot (newest installed version).
kver=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -n1)
[ -n "$kver" ] && [ -s "$root/boot/initrd.img-$kver" ] || die "no kernel/initrd in $root/boot"
cp "$root/boot/vmlinuz-$kver" "$tmp/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$tmp/initrd.img"
chmod 0644 "$tmp/vmlinuz" "$tmp/initrd.img"
rootfs_bytes=$(du -sb "$root" | cut -f1)

log "mkfs.ext4 -d ($DISK_SIZE) + qemu-img convert"
truncate -s "$DISK_SIZE" "$tmp/base.raw"
mkfs.ext4 -q -F -L "$FS_LABEL" -d "$root" "$tmp/base.raw"
rm -rf "$root"
qemu-img convert -q -O qcow2 "$tmp/base.raw" "$tmp/base.qcow2"
rm -f "$tmp/base.raw"
t_img=$(date +%s)

log "manifest"
KEY=$key SUITE=$SUITE VARIANT=$VARIANT MIRROR=$mirror SECURITY=$security KVER=$kver \
CMDLINE=$KERNEL_CMDLINE DISK_SIZE=$DISK_SIZE ROOTFS_BYTES=$rootfs_bytes DIR=$tmp \
SECS="debootstrap=$((t_boot - t0)) customize=$((t_cust - t_boot)) image=$((t_img - t_cust))" \
python3 - <<'PY'
import datetime, hashlib, json, os, subprocess
d = os.environ["DIR"]
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
info = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", f"{d}/base.qcow2"]))
pkgs = []
with open(f"{d}/packages.tsv") as f:
    for line in f:
        name, _, ver = line.rstrip("\n").partition("\t")
        pkgs.append({"name": name, "version": ver})
m = {
    "key": os.environ["KEY"],
    "build_date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "suite": os.environ["SUITE"], "variant": os.environ["VARIANT"],
    "mirror": os.environ["MIRROR"], "security_mirror": os.environ["SECURITY"] or None,
    "kernel_version": os.environ["KVER"], "kernel_cmdline": os.environ["CMDLINE"],
    "files": {n: {"bytes": os.path.getsize(f"{d}/{n}"), "sha256": sha(f"{d}/{n}")}
              for n in ("base.qcow2", "vmlinuz", "initrd.img")},
    "disk_virtual_bytes": info["virtual-size"], "disk_size": os.environ["DISK_SIZE"],
    "rootfs_bytes": int(os.environ["ROOTFS_BYTES"]),
    "build_seconds": {k: int(v) for k, v in (p.split("=") for p in os.environ["SECS"].split())},
    "package_count": len(pkgs), "packages": pkgs,
}
with open(f"{d}/manifest.json", "w") as f:
    json.dump(m, f, indent=1)
    f.write("\n")
PY
mkdir -p "$tmp/logs"
mv "$tmp/debootstrap.log" "$tmp/customize.log" "$tmp/packages.tsv" "$tmp/logs/"
rmdir "$tmp/rootfs" 2>/dev/null || true
chmod 0755 "$tmp" "$tmp/logs"   # mktemp made it 0700; QEMU may run as libvirt-qemu

# Move into place only now (same filesystem: atomic rename; an old one is replaced).
if [ -e "$out" ]; then
  mv "$out" "$tmp.old"
  mv "$tmp" "$out"
  rm -rf --one-file-system "$tmp.old"
else
  mv "$tmp" "$out"
fi
trap - EXIT
exec 9>&-
log "built in $(( $(date +%s) - t0 )) s: $(du -sh "$out" | cut -f1) in $out"
link_and_print
}

main "$@"; exit $?
