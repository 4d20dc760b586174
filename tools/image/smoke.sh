#!/usr/bin/env bash
# Boot the base image once under plain QEMU (TCG) and check it; prints timings.
#
#   tools/image/smoke.sh [IMAGE_DIR]      (default: <repo>/.image, see build.sh)
#
# What it does (nothing but 127.0.0.1 is contacted):
# - a qcow2 overlay of base.qcow2 in a temp dir (base.qcow2 is never written),
# - a NoCloud seed ISO (volid cidata): hostname, a fresh root SSH key, and a fresh
#   ed25519 *host* key injected with cloud-init's ssh_keys,
# - qemu-system-x86_64 -accel tcg -m 1024 -smp 2, direct kernel boot, user-mode net with
#   hostfwd tcp:127.0.0.1:PORT-:22,
# - SSH with StrictHostKeyChecking=yes against a known_hosts holding only the injected
#   host key (and a negative check: a wrong pinned key must be refused),
# - inside: hostname, cloud-init status, AppArmor profiles, cgroup fs, bpftrace, python3,
# - poweroff, and waits for QEMU to exit.
# Environment: RINGZERO_SMOKE_TIMEOUT (boot timeout, default 300 s), RINGZERO_SMOKE_KEEP=1
# keeps the temp dir (console log, keys).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
img=${1:-$here/../../.image}
img=$(cd "$img" && pwd -P)
timeout_s=${RINGZERO_SMOKE_TIMEOUT:-300}
for f in base.qcow2 vmlinuz initrd.img manifest.json; do
  [ -s "$img/$f" ] || { echo "missing $img/$f (run tools/image/build.sh)" >&2; exit 1; }
done
cmdline=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["kernel_cmdline"])' "$img/manifest.json")

log() { printf '[smoke %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

w=$(mktemp -d /tmp/ringzero-smoke.XXXXXX)
qpid=""
finish() {
  local rc=$?
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then kill "$qpid"; wait "$qpid" 2>/dev/null || true; fi
  if [ "$rc" != 0 ] || [ "${RINGZERO_SMOKE_KEEP:-0}" = 1 ]; then
    log "kept $w (console: $w/console.log)"
  else
    rm -rf "$w"
  fi
}
trap finish EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=rz-smoke-$$
ssh-keygen -q -t ed25519 -N '' -C "ringzero-smoke-client" -f "$w/id_ed25519"
ssh-keygen -q -t ed25519 -N '' -C "root@$name" -f "$w/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -C "wrong" -f "$w/wrong_ed25519"
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$w/host_ed25519.pub")" >"$w/known_hosts"
printf '[127.0.0.1]:%s %s\n' "$port" "$(cut -d' ' -f1,2 "$w/wrong_ed25519.pub")" >"$w/known_hosts.wrong"

cat >"$w/meta-data" <<EOF
instance-id: $name
local-hostname: $name
EOF
{
  echo "#cloud-config"
  echo "hostname: $name"
  echo "ssh_authorized_keys:"
  echo "  - $(cat "$w/id_ed25519.pub")"
  echo "ssh_keys:"
  echo "  ed25519_private: |"
  sed 's/^/    /' "$w/host_ed25519"
  echo "  ed25519_public: $(cat "$w/host_ed25519.pub")"
} >"$w/user-data"
genisoimage -quiet -output "$w/seed.iso" -volid cidata -joliet -rock "$w/user-data" "$w/meta-data"
qemu-img create -q -f qcow2 -b "$img/base.qcow2" -F qcow2 "$w/overlay.qcow2"

ssh_opts=(-o BatchMode=yes -o ConnectTimeout=3 -o StrictHostKeyChecking=yes
          -o UserKnownHostsFile="$w/known_hosts" -o GlobalKnownHostsFile=/dev/null
          -o LogLevel=ERROR -i "$w/id_ed25519" -p "$port")
# shellcheck disable=SC2029
g() { ssh "${ssh_opts[@]}" root@127.0.0.1 "$@"; }

# A TCG boot is a heavy job: one at a time with builds (shared lock).
cache=${RINGZERO_CACHE:-$HOME/.cache/ringzero}
mkdir -p "$cache"
exec 9>"$cache/.heavy.lock"
flock -n 9 || { log "waiting for $cache/.heavy.lock"; flock 9; }

log "booting $img (port 127.0.0.1:$port, cmdline '$cmdline')"
t0=$(now)
qemu-system-x86_64 -accel tcg -m 1024 -smp 2 -name "$name" \
  -display none -monitor none -serial "file:$w/console.log" -no-reboot \
  -kernel "$img/vmlinuz" -initrd "$img/initrd.img" -append "$cmdline" \
  -drive "file=$w/overlay.qcow2,format=qcow2,if=virtio" \
  -drive "file=$w/seed.iso,format=raw,if=virtio,readonly=on" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:22" -device virtio-net-pci,netdev=n0 &
qpid=$!

until g true 2>/dev/null; do
  kill -0 "$qpid" 2>/dev/null || { tail -n 30 "$w/console.log" >&2; log "QEMU exited"; exit 1; }
  if [ "$(since "$t0" | cut -d. -f1)" -ge "$timeout_s" ]; then
    tail -n 30 "$w/console.log" >&2; log "no SSH after ${timeout_s}s"; exit 1
  fi
  sleep 1
done
t_ssh=$(since "$t0")
log "SSH answered after ${t_ssh}s (host key pinned: StrictHostKeyChecking=yes)"

if ssh -o BatchMode=yes -o ConnectTimeout=5 -o StrictHostKeyChecking=yes \
     -o UserKnownHostsFile="$w/known_hosts.wrong" -o GlobalKnownHostsFile=/dev/null \
     -i "$w/id_ed25519" -p "$port" root@127.0.0.1 true 2>"$w/wrong.err"; then
  log "FAIL: a wrong pinned host key was accepted"; exit 1
fi
grep -q 'Host key verification failed' "$w/wrong.err" || { cat "$w/wrong.err" >&2; log "FAIL: unexpected error with wrong key"; exit 1; }
log "wrong pinned host key refused: $(grep -m1 'Host key verification failed' "$w/wrong.err")"

t1=$(now)
ci=$(g 'cloud-init status --wait >/dev/null 2>&1; cloud-init status --long' || true)
log "cloud-init finished $(since "$t1")s after first SSH (${ci//$'\n'/; })"

g bash -s >"$w/checks.txt" 2>&1 <<'EOF' || true
set +e
echo "hostname: $(hostname)"
echo "cloud-init: $(cloud-init status 2>&1)"
echo "host keys: $(ls /etc/ssh/ssh_host_*_key.pub | xargs -n1 basename | tr '\n' ' ')"
echo "lsm: $(cat /sys/kernel/security/lsm)"
echo "apparmor profiles (head):"; head -n 5 /sys/kernel/security/apparmor/profiles | sed 's/^/  /'
echo "cgroup fs: $(stat -fc %T /sys/fs/cgroup)"
echo "bpftrace: $(bpftrace -e 'BEGIN { printf("bpftrace-ok\n"); exit(); }' 2>&1 | tr '\n' ' ')"
echo "python: $(python3 --version)"
echo "scmp_sys_resolver: openat=$(scmp_sys_resolver -a x86_64 openat)"
echo "bpftool: $(bpftool version | head -n1)"
echo "kernel: $(uname -r)"
echo "systemd: $(systemctl is-system-running)"
echo "failed units: $(systemctl list-units --failed --plain --no-legend | awk '{print $1}' | tr '\n' ' ')"
echo "ip: $(ip -4 -o addr show scope global | awk '{print $2, $4}')"
echo "root fs: $(df -h / | awk 'NR==2 {print $2" size, "$3" used"}')"
EOF
cat "$w/checks.txt"

t2=$(now)
g 'systemctl poweroff' 2>/dev/null || true
for _ in $(seq 1 120); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$qpid" 2>/dev/null; then log "QEMU still running 60 s after poweroff"; exit 1; fi
wait "$qpid" 2>/dev/null || true
qpid=""
log "powered off in $(since "$t2")s; total $(since "$t0")s"
grep -q '^cloud-init: status: done' "$w/checks.txt" || { log "FAIL: cloud-init not done"; exit 1; }
grep -q 'bpftrace-ok' "$w/checks.txt" || { log "FAIL: bpftrace"; exit 1; }
grep -q '^cgroup fs: cgroup2fs' "$w/checks.txt" || { log "FAIL: cgroup fs"; exit 1; }
grep -q "^hostname: $name\$" "$w/checks.txt" || { log "FAIL: hostname"; exit 1; }
log "OK: ssh ${t_ssh}s"
